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

import numpy as np

PAD, UNK, BOS, EOS = 0, 1, 2, 3

KEYS = (
    "source", "source_segments", "source_positions",
    "target_in", "target_out", "target_segments", "target_positions",
)


def pad_batch(sources: list[list[int]], targets: list[list[int]], source_len: int, target_len: int,
              empty_rows: int = 0) -> dict[str, np.ndarray]:
    """Builds an unpacked batch from id lists (without EOS/BOS), truncating to fit.

    Args:
      sources, targets: token ids per example, no special tokens.
      source_len, target_len: the static padded lengths S and T.
      empty_rows: the last rows are all padding (segments 0): they fill a
        batch up to its fixed size and count for nothing.
    """
    b = len(sources)
    out = {k: np.zeros((b, source_len if k.startswith("source") else target_len), np.int32) for k in KEYS}
    for i, (src, tgt) in enumerate(zip(sources[: b - empty_rows], targets)):
        s = list(src[: source_len - 1]) + [EOS]
        t = list(tgt[: target_len - 1])
        out["source"][i, : len(s)] = s
        out["source_segments"][i, : len(s)] = 1
        out["source_positions"][i, : len(s)] = np.arange(len(s))
        out["target_in"][i, : len(t) + 1] = [BOS] + t
        out["target_out"][i, : len(t) + 1] = t + [EOS]
        out["target_segments"][i, : len(t) + 1] = 1
        out["target_positions"][i, : len(t) + 1] = np.arange(len(t) + 1)
    return out
