"""Attention masks built from segment ids, so packing and padding share one rule."""
from __future__ import annotations

import jax.numpy as jnp


def segment_mask(q_segments, k_segments):
    """[B, Tq, Tk] bool: a query sees a key only in its own segment, never a pad.

    Args:
      q_segments: [B, Tq] int, 0 at pads.
      k_segments: [B, Tk] int, 0 at pads.
    """
    same = q_segments[:, :, None] == k_segments[:, None, :]
    return same & (k_segments[:, None, :] > 0)


def causal_mask(q_segments):
    """[B, T, T] bool: causal self-attention within each segment."""
    t = q_segments.shape[1]
    lower = jnp.tril(jnp.ones((t, t), bool))
    return segment_mask(q_segments, q_segments) & lower[None]
