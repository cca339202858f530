"""Holm's adjusted p-values (`decide.holm`) against the step-down procedure they summarise, run at every level
where a decision can change, and against a hand count."""
from __future__ import annotations

import random

import pytest

from research.analysis import decide
from tests.helpers.holm import step_down


def test_adjusted_p_values_by_hand():
    # sorted: 0.01 (x4 = 0.04), 0.02 (x3 = 0.06), 0.03 (x2 = 0.06), 0.5 (x1 = 0.5)
    got = decide.holm({"a": 0.03, "b": 0.01, "c": 0.5, "d": 0.02})
    assert got == pytest.approx({"b": 0.04, "d": 0.06, "a": 0.06, "c": 0.5})
    # monotone: a later p smaller once multiplied still takes the earlier adjusted value; capped at 1
    assert decide.holm({"a": 0.02, "b": 0.021, "c": 0.9}) == pytest.approx({"a": 0.06, "b": 0.06, "c": 0.9})
    assert decide.holm({"a": 0.4, "b": 0.6}) == {"a": 0.8, "b": 0.8}
    assert decide.holm({"one": 0.03}) == {"one": 0.03} and decide.holm({}) == {}


@pytest.mark.parametrize("seed", range(20))
def test_rejecting_where_the_adjusted_p_is_at_most_alpha_is_the_step_down_procedure(seed):
    rng = random.Random(seed)
    m = rng.randint(1, 12)
    p = {k: rng.choice([rng.random(), rng.random() / 50, 1.0 / rng.randint(1, 200)]) for k in range(m)}
    adjusted = decide.holm(p)
    # the decisions can change only at alpha = p_k * j for some k and j: test just below and above each (at it,
    # the two sides' rounding decides), below 1 (an adjusted p is capped at 1, a procedure's level is not)
    levels = {p[k] * j * f for k in p for j in range(1, m + 1) for f in (0.999, 1.001)} | {0.05}
    levels = {a for a in levels if a < 1}
    for alpha in levels:
        assert {k for k in p if adjusted[k] <= alpha} == step_down(p, alpha), alpha
    assert all(adjusted[k] >= p[k] for k in p)
