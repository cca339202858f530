"""Token-budget batches with length buckets, as static shapes for jit.

Padded lengths come from a short list (`bucket_lengths`), and each shape has a fixed
batch size (`tokens_per_batch // length`), so the number of distinct shapes,
and so of compilations, stays small.
"""
from __future__ import annotations

import logging
from typing import Iterator

import numpy as np

from research.data.batch import pad_batch
from research.data.config import DataConfig

log = logging.getLogger(__name__)

Example = tuple[list[int], list[int]]


def fit_lengths(examples: list[Example], cfg: DataConfig, where: str) -> list[Example]:
    """Truncates or drops examples beyond the configured lengths; counts are logged."""
    ms, mt = cfg.max_source_len - 1, cfg.max_target_len - 1  # room for EOS / BOS
    long = [i for i, (s, t) in enumerate(examples) if len(s) > ms or len(t) > mt]
    if long:
        verb = "truncated" if cfg.length_policy == "truncate" else "dropped"
        log.warning("%s: %s %d of %d examples longer than %d/%d pieces", where, verb, len(long), len(examples), ms, mt)
    if cfg.length_policy == "filter":
        drop = set(long)
        return [e for i, e in enumerate(examples) if i not in drop]
    return [(s[:ms], t[:mt]) for s, t in examples]


def bucket_lengths(width: int, limit: int) -> list[int]:
    """Padded lengths: width x 1, 2, 3, 4, 6, 8, 12, 16, ... (about sqrt(2) apart), then
    the limit itself. Few shapes keep compilations few; the ratio bounds the padding."""
    out, k = [], 1
    while width * k < limit:
        out.append(width * k)
        k = k + 1 if k < 4 else k + k // 2 if k & (k - 1) == 0 else k + k // 3
    return out + [limit]


def _bucket(n: int, width: int, limit: int) -> int:
    return next(b for b in bucket_lengths(width, limit) if b >= n)


def _shape(examples: list[Example], cfg: DataConfig) -> tuple[int, int]:
    s = max(len(e[0]) for e in examples) + 1
    t = max(len(e[1]) for e in examples) + 1
    return _bucket(s, cfg.bucket_width, cfg.max_source_len), _bucket(t, cfg.bucket_width, cfg.max_target_len)


def train_batches(examples: list[Example], cfg: DataConfig, seed: int, start_epoch: int = 0) -> Iterator[dict]:
    """Endless shuffled batches; epoch e is a pure function of (seed, e)."""
    epoch = start_epoch
    while True:
        rng = np.random.default_rng([seed, epoch])
        order = rng.permutation(len(examples))
        # Sort within large shuffled windows so each batch holds similar lengths.
        window = 100 * max(1, cfg.tokens_per_batch // cfg.bucket_width)
        batches = []
        for w in range(0, len(order), window):
            chunk = sorted(order[w : w + window], key=lambda i: (len(examples[i][1]), len(examples[i][0])))
            i = 0
            while i < len(chunk):
                first = examples[chunk[i]]
                length = max(_shape([first], cfg))
                size = max(1, cfg.tokens_per_batch // length)
                group = [examples[j] for j in chunk[i : i + size]]
                s, t = _shape(group, cfg)
                while len(group) > 1 and len(group) * max(s, t) > cfg.tokens_per_batch:
                    group = group[:-1]
                    s, t = _shape(group, cfg)
                batches.append((group, s, t))
                i += len(group)
        for k in rng.permutation(len(batches)):
            group, s, t = batches[k]
            size = max(1, cfg.tokens_per_batch // max(s, t))
            src, tgt = [g[0] for g in group], [g[1] for g in group]
            pad = size - len(group)  # empty rows keep the batch size fixed per shape
            yield pad_batch(src + [[]] * pad, tgt + [[]] * pad, s, t, empty_rows=pad)
        epoch += 1


def eval_batches(examples: list[Example], cfg: DataConfig, batch_size: int) -> Iterator[tuple[np.ndarray, dict]]:
    """Every example once, in length order for speed; yields (original indices, batch)."""
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))
    for k in range(0, len(order), batch_size):
        idx = order[k : k + batch_size]
        group = [examples[i] for i in idx]
        s, t = _shape(group, cfg)
        pad = batch_size - len(group)
        yield np.array(idx), pad_batch([g[0] for g in group] + [[]] * pad, [g[1] for g in group] + [[]] * pad, s, t, empty_rows=pad)
