"""grain input pipeline: token-budget batches with length bucketing or packing.

Every batch is planned from the examples' token counts alone, as a pure
function of (seed, batch number): batch i is "shape k, rows of example ids",
and grain only reads, tokenizes and pads. So the stream is the same for any
number of worker processes, and grain's `get_state()` (a position in that
stream) restores it exactly.

Static shapes: each distinct (B, S, T) costs a JAX compile, so the lengths are
covered by at most `max_shapes` shapes, chosen to minimise padding, with
B = tokens_per_batch // max(S, T) rounded down to a multiple of 8.
Evaluation never truncates: examples longer than its shapes get a few more,
on a coarse grid (`eval_shapes`).
Shuffling is a full permutation per epoch (random access makes it free), so
there is no shuffle buffer to size.

Usage:
  splits = load_splits("jsonl", corpus_dir, "de", "en", tfds_dir=...)   # research.data.builders
  it = train_iterator(splits["train"], sp_src.encode, sp_tgt.encode, PipelineConfig())
  batch = next(it); state = it.get_state()   # json-able; grain's orbax handlers save it
  it2 = train_iterator(...same...); it2.set_state(state)   # continues with the next batch
  for batch in eval_iterator(splits["validation"], ..., shapes=it.shapes): batch["index"] ...
  it.close()   # stops worker processes
"""
from __future__ import annotations

import bisect
import dataclasses
import functools
import logging
import sys
import threading
import time
from typing import Any, Callable, NamedTuple, Sequence

import grain
import numpy as np

from research.data.batch import fill_rows
from research.data.errors import DataError
from research.registry import check

log = logging.getLogger(__name__)

Tokenize = Callable[[str], Sequence[int]]  # text -> ids, no special tokens
Features = Callable[[str], dict]  # source text -> {batch key: one int per source piece} (MakeBatch)
Planned = tuple[int, Sequence[Sequence[int]]]  # (shape id, rows of example ids)

_READ_THREADS, _PREFETCH = 2, 16  # per process; more only competes with the training step for CPU


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """Options of the training and eval pipelines.

    Attributes:
      tokens_per_batch: budget of padded positions per batch, B * max(S, T).
      max_source_len: S limit, counting EOS.
      max_target_len: T limit, counting BOS (target_in) / EOS (target_out).
      length_policy: "filter" drops longer examples, "truncate" cuts them.
      pack: several examples per row (one shape: B x max_source_len, max_target_len).
      seed: the shuffle and packing seed; epoch e uses (seed, e).
      num_workers: grain worker processes; 0 reads in this process. Batches do not depend on it.
      bucket_width: lengths are rounded up to a multiple of this before shapes are chosen.
      max_shapes: at most this many distinct (B, S, T); each is a JAX compile.
      log_every: log padding and throughput every this many batches (0: never).
    """

    tokens_per_batch: int = 4096
    max_source_len: int = 128
    max_target_len: int = 128
    length_policy: str = "filter"  # "filter" | "truncate"
    pack: bool = False  # packing pads ~4% on ddtp_de_en, bucketing ~17% (10 shapes)
    seed: int = 0
    num_workers: int = 0  # the state from get_state() is only valid for the same count
    bucket_width: int = 1  # 1: shapes fit the data exactly; 8 pads ~5 points more, tiles better
    max_shapes: int = 10  # ddtp_de_en padding: 8 shapes 20%, 10 17%, 12 14%, 16 12%
    log_every: int = 1000

    def __post_init__(self):
        # The one check of these keys: DataConfig (the `data` group) builds a PipelineConfig to validate them.
        check(self.length_policy in ("filter", "truncate"), "length_policy",
              f"'{self.length_policy}' is not one of filter, truncate")
        check(self.max_source_len >= 2, "max_source_len", "must be at least 2")
        check(self.max_target_len >= 2, "max_target_len", "must be at least 2")
        longest = max(self.max_source_len, self.max_target_len)
        check(self.tokens_per_batch >= 8 * longest, "tokens_per_batch",
              f"{self.tokens_per_batch} cannot hold 8 rows of {longest} tokens (must be at least {8 * longest})")
        check(self.seed >= 0, "seed", "must be >= 0 (numpy seeds the shuffle)")
        check(self.num_workers >= 0, "num_workers", "must be >= 0")
        check(self.bucket_width > 0, "bucket_width", "must be positive")
        check(self.max_shapes > 0, "max_shapes", "must be positive")
        check(self.log_every >= 0, "log_every", "must be >= 0 (0: never)")


class BatchShape(NamedTuple):
    batch: int   # B
    source: int  # S
    target: int  # T


@dataclasses.dataclass
class PipelineStats:
    """What the pipeline kept and produced; `padding_fraction` counts source and target positions."""

    examples: int = 0
    dropped: int = 0
    truncated: int = 0
    shapes: tuple[BatchShape, ...] = ()
    batches: int = 0
    real_tokens: int = 0
    positions: int = 0
    seconds: float = 0.0  # spent waiting in next(): the pipeline's own cost

    @property
    def padding_fraction(self) -> float:
        return 1.0 - self.real_tokens / max(self.positions, 1)

    @property
    def tokens_per_second(self) -> float:
        return self.real_tokens / max(self.seconds, 1e-9)

    def add(self, batch: dict[str, np.ndarray], seconds: float) -> None:
        self.batches += 1
        self.real_tokens += int((batch["source_segments"] > 0).sum() + (batch["target_segments"] > 0).sum())
        self.positions += batch["source"].size + batch["target_in"].size
        self.seconds += seconds


# ---------------------------------------------------------------- lengths and shapes


def measure_lengths(source: Any, tokenize_source: Tokenize, tokenize_target: Tokenize,
                    chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Token counts (no special tokens) of every example: ([N], [N]) int32."""
    n = len(source)
    src, tgt = np.zeros(n, np.int32), np.zeros(n, np.int32)
    for start in range(0, n, chunk):
        for i, ex in enumerate(_read(source, range(start, min(start + chunk, n))), start):
            src[i], tgt[i] = len(tokenize_source(ex["source"])), len(tokenize_target(ex["target"]))
    return src, tgt


def _read(source: Any, ids: Sequence[int]) -> list[dict[str, str]]:
    many = getattr(source, "__getitems__", None)
    return many(list(ids)) if many else [source[i] for i in ids]


def apply_length_policy(src_len: np.ndarray, tgt_len: np.ndarray, config: PipelineConfig,
                        stats: PipelineStats) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Example ids kept and their padded needs (S incl. EOS, T incl. BOS); counts go to stats."""
    s, t = src_len + 1, tgt_len + 1
    over = (s > config.max_source_len) | (t > config.max_target_len)
    if config.length_policy == "filter":
        ids = np.flatnonzero(~over)
        stats.dropped += int(over.sum())
    else:
        ids = np.arange(len(s))
        stats.truncated += int(over.sum())
    stats.examples += len(ids)
    log.info("length policy %r: %d examples kept, %d dropped, %d truncated (max %d/%d)", config.length_policy,
             len(ids), stats.dropped, stats.truncated, config.max_source_len, config.max_target_len)
    return ids, np.minimum(s[ids], config.max_source_len), np.minimum(t[ids], config.max_target_len)


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


# ---------------------------------------------------------------- batches


class MakeBatch:
    """(shape id, rows of example ids) -> batch; reads and tokenizes. Runs in grain workers.

    `features`, if given, is the tokenizer's source text -> {key: one int per source piece}
    (research/data/batch.py: extra [B, S] keys; a tagger's word starts); None adds no key.
    """

    def __init__(self, source: Any, tokenize_source: Tokenize, tokenize_target: Tokenize,
                 shapes: Sequence[BatchShape], with_index: bool = False, features: Features | None = None):
        self._source, self._tok = source, (tokenize_source, tokenize_target)
        self._shapes, self._with_index, self._features = tuple(shapes), with_index, features

    def _example(self, ex: dict) -> tuple:
        ids = (self._tok[0](ex["source"]), self._tok[1](ex["target"]))
        return ids if self._features is None else (*ids, self._features(ex["source"]))

    def __call__(self, planned: Planned) -> dict[str, np.ndarray]:
        k, rows = planned
        shape = self._shapes[k]
        flat = [i for row in rows for i in row]
        pairs = iter([self._example(ex) for ex in _read(self._source, flat)])
        batch = fill_rows([[next(pairs) for _ in row] for row in rows], *shape)
        if self._with_index:  # the example each row holds, -1 for empty rows
            batch["index"] = np.full(shape.batch, -1, np.int32)
            batch["index"][: len(flat)] = flat
        return batch


class BatchIterator(grain.DatasetIterator):
    """A grain iterator that measures what passes: padding fraction and tokens/s.

    `get_state()` / `set_state()` are the wrapped grain iterator's, so grain's
    orbax checkpoint handlers save and restore it like any other.
    """

    def __init__(self, parent: grain.DatasetIterator, stats: PipelineStats, name: str, log_every: int):
        super().__init__(parent)
        self.stats, self._name, self._log_every = stats, name, log_every

    @property
    def shapes(self) -> tuple[BatchShape, ...]:
        return self.stats.shapes

    def __next__(self) -> dict[str, np.ndarray]:
        start = time.perf_counter()
        # A plain copy: arrays from worker processes live in shared memory that
        # grain frees when they are collected, which at exit is too late.
        batch = {k: np.array(v) for k, v in next(self._parent).items()}
        self.stats.add(batch, time.perf_counter() - start)
        if self._log_every and self.stats.batches % self._log_every == 0:
            log.info("%s: %d batches, padding %.1f%%, %.0f tokens/s", self._name, self.stats.batches,
                     100 * self.stats.padding_fraction, self.stats.tokens_per_second)
        return batch

    def get_state(self) -> dict[str, Any]:
        return self._parent.get_state()

    def set_state(self, state: dict[str, Any]) -> None:
        self._parent.set_state(state)


def _iterate(plan: Any, make: MakeBatch, config: PipelineConfig, stats: PipelineStats, name: str) -> BatchIterator:
    ds = grain.MapDataset.source(plan).map(make).to_iter_dataset(
        grain.ReadOptions(num_threads=_READ_THREADS, prefetch_buffer_size=_PREFETCH))
    if config.num_workers > 0:
        from absl import flags  # grain's workers read absl flags, unparsed outside absl.app.run
        if not flags.FLAGS.is_parsed():
            flags.FLAGS.mark_as_parsed()
        ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=config.num_workers))
    return BatchIterator(iter(ds), stats, name, config.log_every)


def train_iterator(source: Any, tokenize_source: Tokenize, tokenize_target: Tokenize,
                   config: PipelineConfig, features: Features | None = None) -> BatchIterator:
    """The endless, shuffled, resumable training stream of batches.

    Args:
      source: random access to {"source": str, "target": str} (`len`, `[i]`).
      tokenize_source, tokenize_target: text -> ids without special tokens
        (picklable when num_workers > 0, deterministic so measured lengths hold).
      config: the pipeline options.
      features: per-piece source features for extra batch keys (MakeBatch); None: none.

    Returns:
      A grain iterator of batches (see research/data/batch.py); `.stats` and `.shapes`.
    """
    stats = PipelineStats()
    ids, s, t = apply_length_policy(*measure_lengths(source, tokenize_source, tokenize_target), config, stats)
    if not len(ids):
        raise DataError(f"no training example fits max lengths {config.max_source_len}/{config.max_target_len}")
    if config.pack:
        shape = BatchShape(batch_size(config.tokens_per_batch, config.max_source_len, config.max_target_len),
                           config.max_source_len, config.max_target_len)
        stats.shapes = (shape,)
        plan = EndlessPlan(lambda rng: pack_epoch(ids, s, t, shape, rng), config.seed)
    else:
        shapes = stats.shapes = tuple(choose_shapes(s, t, config))
        which = assign_shapes(s, t, shapes)
        plan = EndlessPlan(lambda rng: bucket_epoch(ids, s, t, which, shapes, rng), config.seed)
    log.info("train shapes (B, S, T): %s", [tuple(x) for x in stats.shapes])
    make = MakeBatch(source, tokenize_source, tokenize_target, stats.shapes, features=features)
    return _iterate(plan, make, config, stats, "train")


def eval_iterator(source: Any, tokenize_source: Tokenize, tokenize_target: Tokenize, config: PipelineConfig,
                  shapes: Sequence[BatchShape] | None = None,
                  limits: tuple[int | None, int | None] = (None, None), features: Features | None = None) -> BatchIterator:
    """Every example exactly once and whole, deterministic, never packed, with `batch["index"]`.

    Nothing is cut to fit the batch shapes or `config.max_*_len`, so the loss
    and decoding see full sources and targets, as other toolkits score them.
    The shapes are those given (e.g. the training iterator's `.shapes`, to
    reuse their compiles; else chosen for this split), first, plus the few
    `eval_shapes` adds for the examples none of them holds. Batches are grouped
    by shape and hold examples in corpus order within each shape. `index` [B]
    is the example each row holds (-1 for the empty rows that fill a shape's
    last batch), so hypotheses can be written back in corpus order.

    The one cut is the model's own: `limits` = (S, T), the longest source
    (EOS included) and target (BOS included) it can represent (learned
    position tables; None: no limit). A longer side keeps its first S - 1
    (T - 1) pieces; such examples are counted in `stats.truncated` (the
    caller warns: `evaluation.evaluate_split`). `features` (MakeBatch) are cut with the source.
    """
    stats = PipelineStats()
    src_len, tgt_len = measure_lengths(source, tokenize_source, tokenize_target)
    top = np.iinfo(np.int32).max
    max_s, max_t = (top if x is None else int(x) for x in limits)
    s, t = src_len + 1, tgt_len + 1
    stats.examples, stats.truncated = len(s), int(((s > max_s) | (t > max_t)).sum())
    s, t = np.minimum(s, max_s), np.minimum(t, max_t)
    stats.shapes, added = eval_shapes(s, t, config, shapes)
    log.info("eval: %d examples, shapes %s (%d added so that no example is truncated), %d cut to the "
             "model's limits %s", len(s), [tuple(x) for x in stats.shapes], added, stats.truncated, tuple(limits))
    which = assign_shapes(s, t, stats.shapes) if len(s) else np.zeros(0, np.int64)
    ids = np.arange(len(s))
    plan = [(k, [[int(i)] for i in group[j:j + shape.batch]])
            for k, shape in enumerate(stats.shapes)
            for group in [ids[which == k]] for j in range(0, len(group), shape.batch)]
    cut = (functools.partial(_head, tokenize_source, max_s - 1), functools.partial(_head, tokenize_target, max_t - 1))
    make = MakeBatch(source, *cut, stats.shapes, with_index=True, features=features)
    return _iterate(plan, make, config, stats, "eval")


def _head(tokenize: Tokenize, n: int, text: str) -> Sequence[int]:
    """The first n ids of `text` (a module-level function, so a partial of it pickles for grain workers)."""
    return tokenize(text)[:n]
