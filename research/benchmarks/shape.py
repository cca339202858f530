"""The benchmark's shape: one fixed batch and model size for every pair, so rows compare."""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Shape:
    """The benchmark's shape numbers; the defaults are the fixed benchmark shape."""

    batch: int = 64
    src_len: int = 32
    tgt_len: int = 32
    d_model: int = 256
    d_ff: int = 1024
    heads: int = 4
    layers: int = 3  # each of the encoder and the decoder
    vocab: int = 8000
    hidden: int = 256  # recurrent hidden size (per direction)
    kernel: int = 3  # convolution width
    channels: int = 256  # width inside a convolution stack
    dropout: float = 0.1


BENCH_SHAPE = Shape()
