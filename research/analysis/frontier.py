"""Quality against compute: the Pareto frontier, and which architecture is best at a given budget.

A point is (cost, quality): training FLOPs or seconds spent, and the task
metric reached. An architecture is on the frontier when no other reaches at
least its quality for at most its cost, one of the two strictly (costs within
`SAME_COST` count as equal). Quality is higher-is-better here; a metric of
which lower is better (perplexity) is passed negated (`lower_is_better`).
"""
from __future__ import annotations

import math
from typing import Sequence


# Costs within 1% of each other count as equal: a FLOPs or token budget ends each run at the first step past it,
# so runs of one budget differ by up to a step (0.2% at 600 steps); without this, every architecture of a
# matched-budget sweep that stopped a fraction of a step earlier sat "on the frontier" however weak.
SAME_COST = 0.01


def pareto(points: Sequence[tuple[float, float]], rtol: float = SAME_COST, lower_is_better: bool = False) -> list[int]:
    """Indices of the points no other point dominates (cost <= and quality >=, one strictly; costs within
    `rtol` of each other are equal), by cost. `lower_is_better`: quality <= dominates instead."""
    if lower_is_better:
        return pareto([(c, -q) for c, q in points], rtol)
    keep = []
    for i, (c, q) in enumerate(points):
        dominated = any(c2 <= c * (1 + rtol) and q2 >= q and (c2 < c * (1 - rtol) or q2 > q)
                        for j, (c2, q2) in enumerate(points) if j != i)
        if not dominated and not (math.isnan(c) or math.isnan(q)):
            keep.append(i)
    return sorted(keep, key=lambda i: points[i])


def value_at(curve: Sequence[tuple[float, float]], budget: float) -> float | None:
    """The quality a curve (cost, quality) had reached when it had spent `budget`: its last point
    within it (validation comes at intervals; a curve is not interpolated ahead of its data)."""
    within = [q for c, q in sorted(curve) if c <= budget]
    return within[-1] if within else None


def best_at(curves: dict[str, Sequence[Sequence[tuple[float, float]]]], budgets: Sequence[float],
            lower_is_better: bool = False) -> list[dict]:
    """For each budget: every architecture's mean over its runs of `value_at`, and the best one.

    `curves` maps an architecture to its runs' curves; an architecture counts at
    a budget only when every one of its runs has a point within it; the best
    is the highest mean, or the lowest with `lower_is_better`.
    """
    out = []
    for budget in budgets:
        values = {}
        for arch, runs in curves.items():
            reached = [value_at(c, budget) for c in runs]
            if reached and all(v is not None for v in reached):
                values[arch] = sum(reached) / len(reached)
        best = (min if lower_is_better else max)(values, key=values.get) if values else None
        out.append({"budget": budget, "best": best, "value": values.get(best), "values": values})
    return out
