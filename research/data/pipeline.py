"""grain input pipeline: token-budget batches with length bucketing or packing.

Every batch is planned from the examples' token counts alone, as a pure
function of (seed, batch number): batch i is "shape k, rows of example ids"
(research/data/planning.py chooses the shapes and plans the epochs), and
grain only reads, tokenizes and pads. So the stream is the same for any
number of worker processes, and grain's `get_state()` (a position in that
stream) restores it exactly.

Usage:
  splits = load_splits("jsonl", corpus_dir, "de", "en", tfds_dir=...)   # research.data.builders
  it = train_iterator(splits["train"], sp_src.encode, sp_tgt.encode, PipelineConfig())
  batch = next(it); state = it.get_state()   # json-able; grain's orbax handlers save it
  it2 = train_iterator(...same...); it2.set_state(state)   # continues with the next batch
  for batch in eval_iterator(splits["validation"], ..., shapes=it.shapes): batch["index"] ...
  it.close()   # stops worker processes
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import time
from typing import Any, Callable, Sequence

import grain
import numpy as np

from research.data.batch import fill_rows
from research.data.errors import DataError
from research.data.planning import (BatchShape, EndlessPlan, Planned, assign_shapes, batch_size,
                                     bucket_epoch, choose_shapes, eval_shapes, pack_epoch)
from research.registry import check

log = logging.getLogger(__name__)

Tokenize = Callable[[str], Sequence[int]]  # text -> ids, no special tokens
Features = Callable[[str], dict]  # source text -> {batch key: one int per source piece} (MakeBatch)

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


# ---------------------------------------------------------------- lengths


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
