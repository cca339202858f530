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
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

PAD, UNK, BOS, EOS = 0, 1, 2, 3

KEYS = (
    "source", "source_segments", "source_positions",
    "target_in", "target_out", "target_segments", "target_positions",
)


def fill_rows(rows: Sequence[Sequence[tuple[Sequence[int], Sequence[int]]]], batch: int, source_len: int,
              target_len: int) -> dict[str, np.ndarray]:
    """The one batch builder: row r holds the examples of rows[r] as segments 1, 2, ...

    Args:
      rows: per row, its examples as (source ids, target ids) without special
        tokens; one example per row is an unpacked batch, several a packed one.
        Each example is cut to fit a row by itself (source_len - 1 pieces + EOS,
        target_len - 1 + BOS/EOS).
      batch, source_len, target_len: the static shape B, S, T; rows past
        len(rows) are all padding (segments 0) and count for nothing.

    Raises:
      ValueError: the examples of a packed row overflow it (lengths other than planned).
    """
    out = {k: np.zeros((batch, source_len if k.startswith("source") else target_len), np.int32) for k in KEYS}
    for r, row in enumerate(rows):
        s0 = t0 = 0
        for seg, (src, tgt) in enumerate(row, 1):
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
            s0, t0 = s0 + n, t0 + m
    return out


def pad_batch(sources: Sequence[Sequence[int]], targets: Sequence[Sequence[int]], source_len: int,
              target_len: int) -> dict[str, np.ndarray]:
    """An unpacked batch of one example per row (ids without EOS/BOS), truncated to [B, S] / [B, T]."""
    return fill_rows([[(s, t)] for s, t in zip(sources, targets)], len(sources), source_len, target_len)
