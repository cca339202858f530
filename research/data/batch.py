"""The batch every model and step consumes.

A batch is a dict of int32 numpy arrays with static shapes:

  source            [B, S]  source ids, each example ends with EOS, PAD after
  source_segments   [B, S]  0 at pads, k >= 1 for the k-th example packed in the row
  source_positions  [B, S]  0, 1, ... restarting at each segment start (0 at pads)
  target_in         [B, T]  BOS + target ids (the decoder input, shifted right)
  target_out        [B, T]  target ids + EOS (what the decoder must predict)
  target_segments   [B, T]
  target_positions  [B, T]

Without packing every row holds one example: segments are 1 on real tokens.

A task whose tokenizer gives per-piece features adds them as more [B, S]
keys beside `source` (research/data/tags.py: `source_words`, the word each
first piece starts, and `source_predicate`); the seq2seq and classification
batches hold the keys above and nothing else.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

PAD, UNK, BOS, EOS = 0, 1, 2, 3

KEYS = (
    "source", "source_segments", "source_positions",
    "target_in", "target_out", "target_segments", "target_positions",
)


def fill_rows(rows: Sequence[Sequence[tuple]], batch: int, source_len: int, target_len: int) -> dict[str, np.ndarray]:
    """The one batch builder: row r holds the examples of rows[r] as segments 1, 2, ...

    Args:
      rows: per row, its examples as (source ids, target ids) without special
        tokens; one example per row is an unpacked batch, several a packed one.
        Each example is cut to fit a row by itself (source_len - 1 pieces + EOS,
        target_len - 1 + BOS/EOS). An example may carry a third element,
        {key: one int per source piece} with keys `source_*` other than KEYS:
        each becomes batch[key] [B, S], cut with the source and 0 at EOS and
        pads (see the module docstring).
      batch, source_len, target_len: the static shape B, S, T; rows past
        len(rows) are all padding (segments 0) and count for nothing.

    Raises:
      ValueError: the examples of a packed row overflow it (lengths other than planned); a feature key
        that is not a new `source_*` key, or a feature with fewer values than the source has pieces.
    """
    out = {k: np.zeros((batch, source_len if k.startswith("source") else target_len), np.int32) for k in KEYS}
    for key in sorted({k for row in rows for example in row if len(example) > 2 for k in example[2]}):
        if not key.startswith("source_") or key in KEYS:
            raise ValueError(f"per-piece feature {key!r}: its name must start with 'source_' and not be one of {KEYS}")
        out[key] = np.zeros((batch, source_len), np.int32)
    for r, row in enumerate(rows):
        s0 = t0 = 0
        for seg, (src, tgt, *features) in enumerate(row, 1):
            s = list(src[: source_len - 1]) + [EOS]
            t = list(tgt[: target_len - 1])
            n, m = len(s), len(t) + 1
            if s0 + n > source_len or t0 + m > target_len:
                raise ValueError(f"row {r} overflows ({batch}, {source_len}, {target_len}): "
                                 f"the tokenizer gave other lengths than measured")
            out["source"][r, s0:s0 + n] = s
            out["source_segments"][r, s0:s0 + n] = seg
            out["source_positions"][r, s0:s0 + n] = np.arange(n)
            out["target_in"][r, t0:t0 + m] = [BOS] + t
            out["target_out"][r, t0:t0 + m] = t + [EOS]
            out["target_segments"][r, t0:t0 + m] = seg
            out["target_positions"][r, t0:t0 + m] = np.arange(m)
            for key, values in (features[0].items() if features else ()):
                if len(values) < n - 1:
                    raise ValueError(f"row {r}: feature {key!r} has {len(values)} values for {n - 1} source pieces")
                out[key][r, s0:s0 + n - 1] = values[: n - 1]
            s0, t0 = s0 + n, t0 + m
    return out


def pad_batch(sources: Sequence[Sequence[int]], targets: Sequence[Sequence[int]], source_len: int,
              target_len: int) -> dict[str, np.ndarray]:
    """An unpacked batch of one example per row (ids without EOS/BOS), truncated to [B, S] / [B, T]."""
    return fill_rows([[(s, t)] for s, t in zip(sources, targets)], len(sources), source_len, target_len)
