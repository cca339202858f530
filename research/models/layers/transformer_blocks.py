"""The blocks the transformer encoder and decoder share.

`embed_positions` turns embedded tokens into the first layer's input,
`Residual` wraps every sublayer (attention, feed-forward) in its norm and
dropout, `FeedForward` is the position-wise MLP.
"""
from __future__ import annotations

from typing import Callable

import jax.numpy as jnp
from flax import linen as nn

from research.models.layers.dropout import Dropout
from research.models.layers.positions import Positions


def embed_positions(x, positions, add_positions: Positions, dropout: Dropout, deterministic: bool):
    """Scales embeddings by sqrt(width), adds positions, applies dropout.

    The scale (Vaswani et al. 2017) keeps the embeddings, initialised with
    std width**-0.5, on the scale of the position encodings.

    Args:
      x: [B, T, D] embedded tokens.
      positions: [B, T] int, restarting at 0 in each packed segment.
      add_positions, dropout: the caller's own submodules, so that their
        parameters and dropout keys stay under the caller's names.
    Returns:
      [B, T, D].
    """
    x = x * jnp.sqrt(x.shape[-1]).astype(x.dtype)
    return dropout(add_positions(x, positions), deterministic=deterministic)


class Residual(nn.Module):
    """x + dropout(f(norm(x))) for pre-LN, norm(x + dropout(f(x))) for post-LN."""

    norm: str  # "pre" | "post"
    dropout: float

    @nn.compact
    def __call__(self, x, f: Callable, deterministic: bool):
        """x: [B, T, D]; f: the sublayer, [B, T, D] -> [B, T, D]."""
        ln = nn.LayerNorm(dtype=x.dtype, name="norm")
        drop = lambda y: Dropout(self.dropout)(y, deterministic=deterministic)
        if self.norm == "pre":
            return x + drop(f(ln(x)))
        return ln(x + drop(f(x)))


class FeedForward(nn.Module):
    """Dense(d_ff) -> ReLU -> Dense(d_model), at every position."""

    d_model: int
    d_ff: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.d_model, dtype=self.dtype)(nn.relu(nn.Dense(self.d_ff, dtype=self.dtype)(x)))
