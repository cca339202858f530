"""The benchmark's shapes: one fixed batch and model size for every pair, so rows compare.

`BENCH_SHAPE` is sized for the 2-core CPU the recorded results come from (a
step takes under a second). On an accelerator it is far too small to measure
anything but launch overhead: a transformer step of 95 GFLOP would take about
0.1 ms at an H100's 800 TFLOP/s. `LARGE_SHAPE` is the transformer "big"
of Vaswani et al. (2017) (width 1024, feed-forward 4096, 16 heads, 6 + 6
layers) over 64 x 256-token rows and a 32,000-piece vocabulary: about 20
TFLOP a step, tens of milliseconds on such a GPU (`python -m research.bench --shape large`).
"""
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
LARGE_SHAPE = Shape(batch=64, src_len=256, tgt_len=256, d_model=1024, d_ff=4096, heads=16, layers=6, vocab=32000,
                    hidden=1024, channels=1024)
SHAPES = {"bench": BENCH_SHAPE, "large": LARGE_SHAPE}  # research.bench --shape
