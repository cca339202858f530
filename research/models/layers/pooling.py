"""Summaries of a memory [B, S, D] as one vector per row [B, D], every one masked by padding.

`masked_mean` is also what encoders without a recurrent state hand decoders
as their final state. The classifier (research/models/classifier.py) picks
one summary by `model.pooling`:

  mean       the mean over real positions
  max        the element-wise maximum over real positions
  first      the vector at the first real position (no [CLS] token is added:
             what that position summarises is the encoder's doing: all of the
             text for a transformer or a bidirectional RNN's backward half, a
             receptive field for a CNN)
  attention  a learned query attends over the real positions (one head,
             scaled dot product on a projection of the memory), and the
             weighted mean of the memory is the summary

A row without any real position (an empty row that fills a batch) gets zeros
from every summary. Pads never reach a summary, so adding pad positions
changes none of them (tests/tasks/test_pooling.py).
"""
from __future__ import annotations

import jax.numpy as jnp
from flax import linen as nn

from research.models.layers.attention import masked_softmax

POOLINGS = ("mean", "max", "first", "attention")


def masked_mean(memory, segments):
    """[B, D] mean of memory [B, S, D] over real positions (segments > 0)."""
    mask = (segments > 0)[..., None].astype(memory.dtype)
    return (memory * mask).sum(1) / jnp.maximum(mask.sum(1), 1.0)


def masked_max(memory, segments):
    """[B, D] element-wise maximum of memory [B, S, D] over real positions; zeros for a row without any."""
    mask = (segments > 0)[..., None]  # [B, S, 1]
    top = jnp.where(mask, memory, jnp.finfo(memory.dtype).min).max(1)
    return jnp.where(mask.any(1), top, 0.0).astype(memory.dtype)


def first_real(memory, segments):
    """[B, D] the memory at each row's first real position; zeros for a row without any."""
    mask = segments > 0  # [B, S]
    at = jnp.argmax(mask, axis=1)  # the first True (0 when there is none)
    picked = jnp.take_along_axis(memory, at[:, None, None], axis=1)[:, 0]  # [B, D]
    return jnp.where(mask.any(1)[:, None], picked, 0.0).astype(memory.dtype)


class AttentionPooling(nn.Module):
    """A learned query attending over the memory: softmax over real positions of q . W_k m / sqrt(D)."""

    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, memory, segments):
        d = memory.shape[-1]
        query = self.param("query", nn.initializers.normal(d ** -0.5), (d,))
        keys = nn.Dense(d, dtype=self.dtype, name="key")(memory)  # [B, S, D]
        scores = (keys @ query.astype(keys.dtype)) / jnp.sqrt(jnp.float32(d)).astype(keys.dtype)  # [B, S]
        weights = masked_softmax(scores, segments > 0)  # [B, S] float32; zeros on a row without real positions
        return jnp.einsum("bs,bsd->bd", weights.astype(memory.dtype), memory)


class Pooling(nn.Module):
    """memory [B, S, D], segments [B, S] -> [B, D] by the summary `kind` names (POOLINGS)."""

    kind: str
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, memory, segments):
        if self.kind == "attention":
            return AttentionPooling(self.dtype, name="attention")(memory, segments)
        return {"mean": masked_mean, "max": masked_max, "first": first_real}[self.kind](memory, segments)
