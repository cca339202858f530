"""Position encodings computed from explicit positions, so packed segments restart at 0."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import linen as nn


def sinusoidal(positions, dim: int, dtype=jnp.float32):
    """[B, T, dim] sin/cos encodings (Vaswani et al. 2017) of integer positions [B, T]."""
    half = dim // 2
    freq = np.exp(-np.log(10000.0) * np.arange(half) / max(half - 1, 1))
    angles = positions[..., None].astype(jnp.float32) * freq
    enc = jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)
    if dim % 2:
        enc = jnp.pad(enc, [(0, 0)] * (enc.ndim - 1) + [(0, 1)])
    return enc.astype(dtype)


class Positions(nn.Module):
    """Adds sinusoidal or learned position encodings to embeddings [B, T, D]."""

    kind: str  # "sinusoidal" | "learned"
    max_len: int
    dim: int

    @nn.compact
    def __call__(self, x, positions):
        if self.kind == "sinusoidal":
            return x + sinusoidal(positions, self.dim, x.dtype)
        table = nn.Embed(self.max_len, self.dim, embedding_init=nn.initializers.normal(self.dim ** -0.5), name="table")
        return x + table(jnp.minimum(positions, self.max_len - 1)).astype(x.dtype)
