"""The Pareto frontier of crafted points, and the best architecture at a budget, read off crafted curves."""
from research.analysis.frontier import best_at, pareto, value_at


def test_frontier_of_a_crafted_set():
    points = [(1.0, 5.0), (2.0, 4.0), (2.0, 7.0), (3.0, 7.0), (4.0, 9.0), (5.0, 8.0), (0.5, 1.0)]
    # (2, 4) is dominated by (1, 5); (3, 7) by (2, 7) at equal quality; (5, 8) by (4, 9).
    assert pareto(points) == [6, 0, 2, 4]


def test_best_at_budgets_reads_the_last_point_within_each():
    curves = {"fast": [[(1, 2.0), (2, 4.0), (3, 5.0)], [(1, 2.0), (2, 6.0), (3, 7.0)]],
              "slow": [[(2, 1.0), (4, 9.0)], [(2, 3.0), (4, 9.0)]]}
    assert value_at(curves["slow"][0], 3.5) == 1.0 and value_at(curves["slow"][0], 1.0) is None
    table = best_at(curves, [1, 2, 4])
    assert [(row["best"], row["value"]) for row in table] == [("fast", 2.0), ("fast", 5.0), ("slow", 9.0)]
    assert table[0]["values"] == {"fast": 2.0}  # slow has no point within 1 yet
