"""Summaries of a memory for decoders that start from a single vector."""
from __future__ import annotations

import jax.numpy as jnp


def masked_mean(memory, segments):
    """[B, D] mean of memory [B, S, D] over real positions (segments > 0)."""
    mask = (segments > 0)[..., None].astype(memory.dtype)
    return (memory * mask).sum(1) / jnp.maximum(mask.sum(1), 1.0)
