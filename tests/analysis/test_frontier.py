"""The Pareto frontier of crafted points, and the best architecture at a budget, read off crafted curves."""
from research.analysis.frontier import best_at, pareto, value_at


def test_frontier_of_a_crafted_set():
    points = [(1.0, 5.0), (2.0, 4.0), (2.0, 7.0), (3.0, 7.0), (4.0, 9.0), (5.0, 8.0), (0.5, 1.0)]
    # (2, 4) is dominated by (1, 5); (3, 7) by (2, 7) at equal quality; (5, 8) by (4, 9).
    assert pareto(points) == [6, 0, 2, 4]
    assert pareto(points, rtol=0.0) == [6, 0, 2, 4]


def test_a_matched_budget_sweep_has_one_architecture_on_its_frontier():
    """Runs of one FLOPs budget end a fraction of a step apart: those fractions buy no place on the frontier
    (the translation sweep's report listed four architectures at 8.20e12-8.23e12 FLOPs before)."""
    points = [(8.205e12, 2.25), (8.210e12, 4.12), (8.221e12, 7.43), (8.230e12, 5.12), (8.201e12, 2.27)]
    assert pareto(points) == [2]
    assert pareto(points, rtol=0.0) == [4, 1, 2]  # exact costs: the cheaper fractions survive
    assert pareto([(8.0e12, 5.0), (4.0e12, 3.0)]) == [1, 0]  # half the cost is a real difference


def test_best_at_budgets_reads_the_last_point_within_each():
    curves = {"fast": [[(1, 2.0), (2, 4.0), (3, 5.0)], [(1, 2.0), (2, 6.0), (3, 7.0)]],
              "slow": [[(2, 1.0), (4, 9.0)], [(2, 3.0), (4, 9.0)]]}
    assert value_at(curves["slow"][0], 3.5) == 1.0 and value_at(curves["slow"][0], 1.0) is None
    table = best_at(curves, [1, 2, 4])
    assert [(row["best"], row["value"]) for row in table] == [("fast", 2.0), ("fast", 5.0), ("slow", 9.0)]
    assert table[0]["values"] == {"fast": 2.0}  # slow has no point within 1 yet
