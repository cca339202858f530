"""Which examples go in which batch: static shapes from token counts, and the epoch plans.

Pure NumPy, no reading and no grain: everything here sees only the examples'
token counts, so a plan is a function of (lengths, config, seed) alone, and
research/data/pipeline.py can hand it to grain to read, tokenize and pad.

Static shapes: each distinct (B, S, T) costs a JAX compile, so the lengths are
covered by at most `max_shapes` shapes, chosen to minimise padding, with
B = tokens_per_batch // max(S, T) rounded down to a multiple of 8
(`choose_shapes`). Evaluation never truncates: examples longer than its
shapes get a few more, on a coarse grid (`eval_shapes`).

A plan is a list of `Planned` = (shape id, rows of example ids). Bucketing puts
one example per row (`bucket_epoch`), packing several (`pack_epoch`); each is
a full permutation per epoch (random access makes it free, so there is no
shuffle buffer to size), and `EndlessPlan` strings epochs into the endless
training stream, batch i a pure function of (seed, i).
"""
from __future__ import annotations

import bisect
import sys
import threading
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Sequence

import numpy as np

if TYPE_CHECKING:  # only read for its fields; pipeline.py imports this module
    from research.data.pipeline import PipelineConfig

Planned = tuple[int, Sequence[Sequence[int]]]  # (shape id, rows of example ids)


class BatchShape(NamedTuple):
    batch: int   # B
    source: int  # S
    target: int  # T


def batch_size(tokens_per_batch: int, source: int, target: int) -> int:
    """The rows of one shape under the budget, a multiple of 8 when it can be (sharding, tiles)."""
    b = tokens_per_batch // max(source, target)
    return b // 8 * 8 if b >= 8 else max(b, 1)


def choose_shapes(s: np.ndarray, t: np.ndarray, config: PipelineConfig) -> list[BatchShape]:
    """At most `max_shapes` (B, S, T) covering every (s, t), chosen greedily to minimise padding.

    Candidates are the rounded (s, t) cells themselves. The cost counts padded
    source+target positions, plus half a batch of empty rows per shape (what a
    last partial batch can cost), so rare shapes that would mostly hold padding
    are not added. The first shape chosen covers every example.
    """
    w = config.bucket_width
    rs = np.minimum(-(-s // w) * w, config.max_source_len)
    rt = np.minimum(-(-t // w) * w, config.max_target_len)
    cells, counts = np.unique(np.stack([rs, rt], 1), axis=0, return_counts=True)  # [C, 2], [C]
    cands = np.unique(np.concatenate([cells, [[rs.max(), rt.max()]]]), axis=0)  # [Q, 2]
    area = cands.sum(1).astype(np.float32)  # S + T positions per row
    rows = np.array([batch_size(config.tokens_per_batch, a, b) for a, b in cands])
    penalty = rows * area / 2

    def totals(cost: np.ndarray) -> np.ndarray:  # [Q] total cost if each candidate joined; in chunks for memory
        out = np.empty(len(cands), np.float64)
        for i in range(0, len(cands), 256):
            c = cands[i:i + 256]
            fits = (c[:, None, 0] >= cells[None, :, 0]) & (c[:, None, 1] >= cells[None, :, 1])  # [q, C]
            out[i:i + 256] = np.minimum(np.where(fits, area[i:i + 256, None], np.inf), cost) @ counts
        return out + penalty

    top = int(np.flatnonzero((cands == [rs.max(), rt.max()]).all(1))[0])  # the one shape that fits all
    chosen, cost = [top], np.full(len(cells), area[top], np.float32)
    total = cost @ counts + penalty[top]
    while len(chosen) < config.max_shapes:
        new = totals(cost) + penalty[chosen].sum()
        new[chosen] = np.inf
        q = int(np.argmin(new))
        if new[q] >= total:
            break
        chosen.append(q)
        cost = np.minimum(cost, np.where((cands[q] >= cells).all(1), area[q], np.inf)).astype(np.float32)
        total = new[q]
    return sorted(BatchShape(int(rows[q]), int(cands[q, 0]), int(cands[q, 1])) for q in chosen)


def assign_shapes(s: np.ndarray, t: np.ndarray, shapes: Sequence[BatchShape]) -> np.ndarray:
    """[N] index of the cheapest shape that fits each example; the largest where none does."""
    size = np.array([[sh.source, sh.target] for sh in shapes])
    area = size.sum(1).astype(np.float64)
    fits = (size[None, :, 0] >= s[:, None]) & (size[None, :, 1] >= t[:, None])  # [N, K]
    return np.where(fits.any(1), np.argmin(np.where(fits, area, np.inf), 1), np.argmax(area))


def grid_length(n: int) -> int:
    """The smallest of 16, 24, 32, 48, 64, 96, ... (2^k and 1.5 * 2^k) that is >= n.

    The coarse grid of the shapes `eval_shapes` adds: its steps are 1.33x or
    1.5x, so a long example pads by under half its length, and a split needs
    only a few of them, the same at every validation (one compile each per run).
    """
    if n <= 16:
        return 16
    p = 1 << (int(n) - 1).bit_length()  # the power of two >= n
    return p * 3 // 4 if p * 3 // 4 >= n else p


def eval_shapes(s: np.ndarray, t: np.ndarray, config: PipelineConfig,
                shapes: Sequence[BatchShape] | None = None) -> tuple[tuple[BatchShape, ...], int]:
    """Shapes that hold every (s, t) [N] whole; -> (shapes, how many of them were added).

    First `shapes`, or, without them, those `choose_shapes` picks for the
    examples within the max lengths. Then, for the examples none of these
    holds, one shape per grid source length: (B, grid_length(S), the largest
    grid_length(T) among them), B following the token budget as in training.
    The grid, not the examples' own lengths, fixes the widths so that these
    shapes are few and recur.
    """
    base = tuple(shapes or ())
    within = (s <= config.max_source_len) & (t <= config.max_target_len)
    if not base and within.any():
        base = tuple(choose_shapes(s[within], t[within], config))
    size = np.array([[x.source, x.target] for x in base], np.int64).reshape(-1, 2)  # [K, 2]
    held = ((size[None, :, 0] >= s[:, None]) & (size[None, :, 1] >= t[:, None])).any(1)  # [N]
    wide = {}  # grid S -> grid T of the examples not held
    for a, b in zip(s[~held], t[~held]):
        key = grid_length(a)
        wide[key] = max(wide.get(key, 0), grid_length(b))
    added = tuple(BatchShape(batch_size(config.tokens_per_batch, a, b), a, b) for a, b in sorted(wide.items()))
    return base + added, len(added)


# ---------------------------------------------------------------- plans


def bucket_epoch(ids: np.ndarray, s: np.ndarray, t: np.ndarray, which: np.ndarray,
                 shapes: Sequence[BatchShape], rng: np.random.Generator) -> list[Planned]:
    """Shuffled batches of one example per row; `which` [N] is each example's shape.

    Shapes are filled from the smallest; the few examples left over after a
    shape's full batches move on to the cheapest larger shape that fits them,
    so only the largest shape ends with a partial batch of empty rows.
    """
    size = np.array([[x.source, x.target] for x in shapes])
    area = size.sum(1)
    order = np.argsort(area, kind="stable")
    pools = [list(rng.permutation(np.flatnonzero(which == k))) for k in range(len(shapes))]
    batches = []
    for rank, k in enumerate(order):
        pool, b = pools[k], shapes[k].batch
        full = len(pool) // b * b
        batches += [(int(k), [[int(ids[e])] for e in pool[j:j + b]]) for j in range(0, full, b)]
        stuck = []
        for e in pool[full:]:
            larger = [q for q in order[rank + 1:] if size[q, 0] >= s[e] and size[q, 1] >= t[e]]
            (pools[larger[0]] if larger else stuck).append(e)
        if stuck:
            batches.append((int(k), [[int(ids[e])] for e in stuck]))
    return [batches[i] for i in rng.permutation(len(batches))]


def pack_epoch(ids: np.ndarray, s: np.ndarray, t: np.ndarray, shape: BatchShape,
               rng: np.random.Generator, chunk: int = 4096) -> list[Planned]:
    """Shuffled batches of packed rows: first-fit decreasing within chunks of examples."""
    rows: list[list[int]] = []
    order = rng.permutation(len(ids))
    for start in range(0, len(order), chunk):
        part = order[start:start + chunk]
        part = part[np.argsort(-(s[part] + t[part]), kind="stable")]
        free = np.zeros((len(part), 2), np.int64)  # room left per open row: [rows, (S, T)]
        members: list[list[int]] = []
        for e in part:
            fit = np.flatnonzero((free[:len(members), 0] >= s[e]) & (free[:len(members), 1] >= t[e]))
            r = int(fit[0]) if len(fit) else len(members)
            if r == len(members):
                members.append([])
                free[r] = (shape.source, shape.target)
            members[r].append(int(ids[e]))
            free[r] -= (s[e], t[e])
        rows += members
    rows = [rows[i] for i in rng.permutation(len(rows))]
    return [(0, rows[j:j + shape.batch]) for j in range(0, len(rows), shape.batch)]


class EndlessPlan:
    """Random access to batch i of the endless training stream; a pure function of (seed, i).

    Epoch lengths are found epoch by epoch (packing makes them vary), and the
    two latest epoch plans are cached, so sequential reads cost one plan per
    epoch. grain's reader threads call in concurrently, hence the lock.
    """

    def __init__(self, make_epoch: Callable[[np.random.Generator], list[Planned]], seed: int):
        self._make_epoch, self._seed = make_epoch, seed
        self._ends: list[int] = []  # cumulative batch count after each epoch
        self._cache: dict[int, list[Planned]] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:  # sent to grain workers; a lock does not pickle
        return {**self.__dict__, "_lock": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _lock=threading.Lock())

    def __len__(self) -> int:
        return sys.maxsize

    def _epoch(self, epoch: int) -> list[Planned]:
        if epoch not in self._cache:
            self._cache = {e: p for e, p in self._cache.items() if e == max(self._cache)}
            self._cache[epoch] = self._make_epoch(np.random.default_rng([self._seed, epoch]))
        return self._cache[epoch]

    def __getitem__(self, i: int) -> Planned:
        with self._lock:
            while not self._ends or i >= self._ends[-1]:
                self._ends.append((self._ends[-1] if self._ends else 0) + len(self._epoch(len(self._ends))))
            epoch = bisect.bisect_right(self._ends, i)
            return self._epoch(epoch)[i - (self._ends[epoch - 1] if epoch else 0)]
