"""ConvS2S building blocks (Gehring et al. 2017): gated 1-D convolutions.

A convolution is one matmul over a window of shifted inputs. Each tap is
zeroed where it reaches into another segment or a pad, so packed examples and
pads never leak into a neighbour, and the cached decoder, which keeps the last
kernel-1 inputs, computes exactly what the full-sequence call computes.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import linen as nn

RESIDUAL_SCALE = math.sqrt(0.5)  # keeps the variance of a residual sum constant


def tap_offsets(kernel: int, causal: bool) -> list[int]:
    """Relative positions of the taps, oldest first: causal taps only look back."""
    if causal:
        return list(range(-(kernel - 1), 1))
    left = (kernel - 1) // 2
    return list(range(-left, kernel - left))


def _shift(a, off):
    """a[:, t + off] at position t, zeros outside (works for [B, T, ...] arrays)."""
    if off == 0:
        return a
    t = a.shape[1]
    pad = [(0, 0)] * a.ndim
    if off < 0:
        pad[1] = (-off, 0)
        return jnp.pad(a, pad)[:, :t]
    pad[1] = (0, off)
    return jnp.pad(a, pad)[:, off:]


def windows(x, segments, kernel: int, causal: bool):
    """[B, T, C] -> [B, T, kernel * C] of same-segment taps, oldest first."""
    taps = []
    for off in tap_offsets(kernel, causal):
        keep = (_shift(segments, off) == segments) & (segments > 0)
        taps.append(jnp.where(keep[..., None], _shift(x, off), 0.0))
    return jnp.concatenate(taps, -1)


class GatedConv(nn.Module):
    """Convolution to 2C channels followed by a GLU: [B, T, k*C] windows -> [B, T, C]."""

    channels: int
    kernel: int
    dropout: float
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, window, deterministic):
        std = math.sqrt(4 * (1.0 - self.dropout) / (self.kernel * self.channels))
        y = nn.Dense(2 * self.channels, dtype=self.dtype, kernel_init=nn.initializers.normal(std), name="conv")(window)
        return jax.nn.glu(y, axis=-1)
