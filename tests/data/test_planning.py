"""Batch planning against independent references: a brute-force search over shape sets, a loop that
picks each example's cheapest shape, and hand counts of which example lands where."""
from __future__ import annotations

import functools
import itertools
import pickle

import numpy as np
import pytest

from research.data.pipeline import PipelineConfig
from research.data.planning import (BatchShape, EndlessPlan, assign_shapes, batch_size, bucket_epoch,
                                    choose_shapes, grid_length, pack_epoch)

BUDGET = 512


def padded_cost(shapes, s, t):
    """The cost `choose_shapes` minimises, counted by hand: every example in its cheapest fitting
    shape (S + T positions), plus half a batch of rows per shape."""
    total = sum(min(a + b for a, b in shapes if a >= x and b >= y) for x, y in zip(s, t))
    return total + sum(batch_size(BUDGET, a, b) * (a + b) / 2 for a, b in shapes)


def lengths(seed, n):
    rng = np.random.default_rng(seed)
    s = rng.integers(2, 40, n)
    return s, np.clip(s + rng.integers(-8, 9, n), 2, 40)


@pytest.mark.parametrize("seed", range(8))
def test_greedy_shapes_cover_everything_and_come_close_to_the_best_set(seed):
    s, t = lengths(seed, 60)
    k = 2 + seed % 2  # one shape has its own test below: the brute force has nothing to choose there
    got = choose_shapes(s, t, PipelineConfig(tokens_per_batch=BUDGET, max_source_len=40, max_target_len=40,
                                             max_shapes=k, bucket_width=1, log_every=0))
    pairs = [(x.source, x.target) for x in got]
    top = (int(s.max()), int(t.max()))
    assert top in pairs and len(pairs) <= k
    assert all(x.batch == batch_size(BUDGET, x.source, x.target) for x in got)
    # Brute force: every set of up to k shapes drawn from the examples' own (s, t), the top one included.
    others = sorted(set(zip(s.tolist(), t.tolist())) - {top})
    best = min(padded_cost([top, *more], s, t) for r in range(k) for more in itertools.combinations(others, r))
    # Greedy is not exact: on 40 such instances with 20-200 examples it was optimal on 33 and at most 1.2%
    # above the best set (2026-12-06); 5% leaves room without hiding a broken search.
    assert best <= padded_cost(pairs, s, t) <= 1.05 * best


def test_one_shape_is_the_one_that_fits_everything():
    s, t = lengths(0, 50)
    got = choose_shapes(s, t, PipelineConfig(tokens_per_batch=BUDGET, max_source_len=40, max_target_len=40,
                                             max_shapes=1, bucket_width=1, log_every=0))
    assert got == [BatchShape(batch_size(BUDGET, int(s.max()), int(t.max())), int(s.max()), int(t.max()))]


def test_each_example_goes_to_its_cheapest_fitting_shape():
    s, t = lengths(3, 200)
    shapes = (BatchShape(32, 20, 20), BatchShape(16, 40, 12), BatchShape(16, 12, 40), BatchShape(8, 30, 30))
    which = assign_shapes(s, t, shapes)
    for e, (a, b) in enumerate(zip(s, t)):
        fitting = [k for k, x in enumerate(shapes) if x.source >= a and x.target >= b]
        want = min(fitting, key=lambda k: (shapes[k].source + shapes[k].target, k)) if fitting else 3
        assert which[e] == want, (e, a, b)


def test_grid_lengths_are_few_and_pad_under_half():
    grid = sorted({grid_length(n) for n in range(1, 4097)})
    assert grid[:8] == [16, 24, 32, 48, 64, 96, 128, 192] and len(grid) == 17 and grid[-1] == 4096
    for n in range(17, 4097):
        assert n <= grid_length(n) < 1.5 * n


def test_bucket_epoch_holds_every_example_once_in_a_shape_that_fits_it():
    s, t = lengths(5, 300)
    ids = np.arange(1000, 1300)  # example ids differ from positions, as after the length filter
    shapes = (BatchShape(16, 16, 16), BatchShape(8, 40, 40), BatchShape(16, 24, 24))
    which = assign_shapes(s, t, shapes)
    plan = bucket_epoch(ids, s, t, which, shapes, np.random.default_rng(0))
    seen = []
    for k, rows in plan:
        assert 1 <= len(rows) <= shapes[k].batch and all(len(row) == 1 for row in rows)
        for (i,) in rows:
            assert s[i - 1000] <= shapes[k].source and t[i - 1000] <= shapes[k].target
            seen.append(i)
    assert sorted(seen) == list(ids)
    partial = [k for k, rows in plan if len(rows) < shapes[k].batch]
    assert partial == [1]  # every example fits (8, 40, 40), so leftovers move on to it and only it ends partial


def test_leftovers_move_to_the_cheapest_larger_shape_that_fits():
    # By hand: three short examples fill one batch of A and leave one over, which joins the one example of
    # B (the cheapest larger shape) to fill B; C keeps its one example as the only partial batch.
    shapes = (BatchShape(2, 10, 10), BatchShape(2, 20, 20), BatchShape(2, 30, 30))
    s = t = np.array([5, 5, 5, 15, 25])
    plan = bucket_epoch(np.arange(5), s, t, np.array([0, 0, 0, 1, 2]), shapes, np.random.default_rng(0))
    assert sorted((k, len(rows)) for k, rows in plan) == [(0, 2), (1, 2), (2, 1)]
    assert [row for k, rows in plan if k == 2 for row in rows] == [[4]]


def test_pack_epoch_rows_fit_the_shape_and_hold_every_example_once():
    s, t = lengths(6, 400)
    shape = BatchShape(8, 48, 48)
    plan = pack_epoch(np.arange(400), s, t, shape, np.random.default_rng(1), chunk=128)
    rows = [row for k, batch in plan for row in batch]
    assert all(k == 0 and len(batch) <= shape.batch for k, batch in plan)
    assert sorted(i for row in rows for i in row) == list(range(400))
    for row in rows:
        assert s[row].sum() <= shape.source and t[row].sum() <= shape.target
    # Rows needed, at least: the longer side's total over its width (174.7 here). First-fit decreasing in
    # chunks of 128 made 186 rows (2026-12-06); 15% over the bound fails a packer that fills rows half as well.
    lower = max(s.sum() / shape.source, t.sum() / shape.target)
    assert len(rows) <= 1.15 * lower + 4


def test_endless_plan_is_a_pure_function_of_the_batch_number():
    s, t = lengths(7, 90)
    shape = BatchShape(8, 48, 48)
    make = functools.partial(pack_epoch, np.arange(90), s, t, shape)  # epochs of varying length; pickles
    forward = EndlessPlan(make, seed=4)
    first = [forward[i] for i in range(60)]
    backward = EndlessPlan(make, seed=4)
    assert [backward[i] for i in reversed(range(60))][::-1] == first
    assert [pickle.loads(pickle.dumps(forward))[i] for i in (59, 0, 31)] == [first[59], first[0], first[31]]
    # Epochs, found by hand from each epoch's own plan, each hold every example once.
    start = 0
    for epoch in range(3):
        plan = make(np.random.default_rng([4, epoch]))
        assert first[start:start + len(plan)] == plan[:60 - start]
        if start + len(plan) <= 60:
            assert sorted(i for _, batch in plan for row in batch for i in row) == list(range(90))
        start += len(plan)
    assert EndlessPlan(make, seed=5)[0] != first[0]
