"""Multi-head attention with separate projection and attention steps.

The split lets a cached decoder project only the newest token's key/value and
attend over the cache, with the same parameters as the full-sequence call.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from research.models.layers.dropout import Dropout

NEG_INF = -1e9


def masked_softmax(scores, mask):
    """Softmax over the last axis, over the positions where `mask` is true.

    Args:
      scores: [..., Tk] any float dtype; computed in float32.
      mask: bool, broadcastable to scores.
    Returns:
      float32 weights of scores' shape; a row that sees no key at all (a pad
      query) gets zeros, not a uniform average.
    """
    scores = jnp.where(mask, scores.astype(jnp.float32), NEG_INF)
    return jnp.where(mask.any(-1, keepdims=True), jax.nn.softmax(scores, axis=-1), 0.0)


def attend(q, k, v, mask, dropout_fn=None, bias=None):
    """Scaled dot-product attention.

    Args:
      q: [B, Tq, H, Dh]; k, v: [B, Tk, H, Dh]; mask: [B, Tq, Tk] bool.
      dropout_fn: applied to the weights in training, None otherwise.
      bias: [B, H, Tq, Tk] added to the scaled scores (relative positions, `positions.RelativeBias`), or None.
    Returns:
      ([B, Tq, H, Dh] context, [B, H, Tq, Tk] weights): the weights before dropout, a distribution over
      the keys (what attention images show and copy attention scatters, research/models/layers/pointer_generator.py);
      the context is made of the dropped-out ones.
    """
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(q.shape[-1]).astype(q.dtype)
    if bias is not None:
        scores = scores.astype(jnp.float32) + bias
    weights = masked_softmax(scores, mask[:, None]).astype(v.dtype)  # [B, H, Tq, Tk]
    dropped = weights if dropout_fn is None else dropout_fn(weights)
    return jnp.einsum("bhqk,bkhd->bqhd", dropped, v), weights


class MultiHeadAttention(nn.Module):
    """Attention from queries [B, Tq, D] to keys/values [B, Tk, D_kv]."""

    num_heads: int
    d_model: int
    dropout: float = 0.0
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        head = self.d_model // self.num_heads
        dense = lambda name: nn.DenseGeneral((self.num_heads, head), dtype=self.dtype, name=name)
        self.query, self.key, self.value = dense("query"), dense("key"), dense("value")
        self.out = nn.DenseGeneral(self.d_model, axis=(-2, -1), dtype=self.dtype, name="out")
        self.drop = Dropout(self.dropout)

    def project_kv(self, x):
        """[B, T, D_kv] -> ([B, T, H, Dh], [B, T, H, Dh])."""
        return self.key(x), self.value(x)

    def attend_kv(self, x_q, k, v, mask, deterministic=True, bias=None):
        """Queries [B, Tq, D] over projected k/v (scores plus `bias` [B, H, Tq, Tk] if given); returns
        ([B, Tq, D], [B, H, Tq, Tk])."""
        q = self.query(x_q)
        dropout_fn = None if deterministic or self.dropout == 0 else (lambda w: self.drop(w, deterministic=False))
        ctx, weights = attend(q, k, v, mask, dropout_fn, bias)
        return self.out(ctx), weights

    def _row_queries(self, x_q, g: int):
        """Queries [N, 1, D] of N = G x K hypotheses (row-major, g * K + j) -> [G, H, K, Dh]: a source row's
        K hypotheses side by side, for the beam layouts of `attend_history` and `attend_shared`."""
        q = self.query(x_q)[:, 0]  # [N, H, Dh]
        n, h, dh = q.shape
        return q.reshape(g, n // g, h, dh).transpose(0, 2, 1, 3)

    def _hypothesis_out(self, ctx):
        """Context [G, H, K, Dh] back to the hypotheses' rows, projected: [G x K, 1, D]."""
        g, h, kk, dh = ctx.shape
        return self.out(ctx.transpose(0, 2, 1, 3).reshape(g * kk, 1, h, dh))

    def attend_history(self, x_q, k, v, history, mask, bias=None):
        """One query per hypothesis over buffers that hold each source row's beams side by side.

        Args:
          x_q: [N, 1, D] with N = G x K hypotheses, K per source row, row-major (g * K + j).
          k: [G, H, Dh, K, L], v: [G, H, K, L, Dh] (`Stationary` buffers, research/models/interfaces.py):
            position l of beam slot j of source row g. Keys have Dh before the positions, so that
            the score matmul reads them as they lie; with Dh last XLA copies them transposed first.
          history: [N, L] int32, the slot that holds position l of each hypothesis's history.
          mask: [N, 1, L] bool, the positions written so far.
          bias: [N, H, 1, L] added to each hypothesis's scores of its positions (relative positions), or None.
            It depends on the position only, so every beam slot of a position gets the same.
        Returns:
          [N, 1, D], as `attend_kv` on each hypothesis's own history.

        Every query scores the positions of all K slots of its source row, and the softmax keeps
        only those its history names. That is K times the few attention FLOPs, but two plain
        batched matmuls that read each buffer once: a gather of the histories wrote an [N, L, H, Dh]
        copy per layer and step, which XLA's CPU fusions did not fold into the products after it.
        """
        g, h, kk, length, dh = v.shape
        q = self._row_queries(x_q, g)  # [G, H, K, Dh]
        keys = k.reshape(g, h, dh, kk * length)
        scores = jnp.einsum("ghqd,ghdm->ghqm", q, keys) / jnp.sqrt(dh).astype(q.dtype)  # [G, H, K, K x L]
        if bias is not None:  # [N, H, 1, L] -> [G, H, K, 1, L], the same for each of the K slots
            per_row = bias[:, :, 0].reshape(g, kk, h, 1, length).transpose(0, 2, 1, 3, 4)
            scores = (scores.astype(jnp.float32).reshape(g, h, kk, kk, length) + per_row).reshape(g, h, kk, kk * length)
        own = history.reshape(g, kk, 1, length) == jnp.arange(kk)[None, None, :, None]  # [G, K, K, L]
        keep = (own & mask.reshape(g, kk, 1, length))[:, None].reshape(g, 1, kk, kk * length)
        weights = masked_softmax(scores, keep).astype(v.dtype)
        ctx = jnp.einsum("ghqm,ghmd->ghqd", weights, v.reshape(g, h, kk * length, dh))  # [G, H, K, Dh]
        return self._hypothesis_out(ctx)

    def project_shared(self, x):
        """[G, S, D_kv] -> keys [G, H, Dh, S] and values [G, H, S, Dh], laid out for `attend_shared`."""
        k, v = self.project_kv(x)
        return k.transpose(0, 2, 3, 1), v.transpose(0, 2, 1, 3)

    def attend_shared(self, x_q, k, v, mask):
        """One query per hypothesis over keys and values that all beams of a source row share.

        Args:
          x_q: [N, 1, D] with N = G x K hypotheses, K per source row, row-major (g * K + j).
          k: [G, H, Dh, S], v: [G, H, S, Dh] (`project_shared`): one copy per source row.
          mask: [G, S] bool, the source row's real positions.
        Returns:
          ([N, 1, D], [N, H, 1, S] weights), as `attend_kv` with k, v and mask repeated K times.

        The K queries of a row are one [K, Dh] x [Dh, S] product per head, reading the row's keys
        once, where K copies laid out [S, H, Dh] made XLA copy each transposed at every step (at the
        benchmark shape six [128, 4, 64, 32] copies a step, 16% of a beam-4 search on an Intel Xeon).
        """
        g, h, dh, s = k.shape
        q = self._row_queries(x_q, g)  # [G, H, K, Dh]
        scores = jnp.einsum("ghqd,ghds->ghqs", q, k) / jnp.sqrt(dh).astype(q.dtype)
        weights = masked_softmax(scores, mask[:, None, None, :]).astype(v.dtype)  # [G, H, K, S]
        ctx = jnp.einsum("ghqs,ghsd->ghqd", weights, v)
        return self._hypothesis_out(ctx), weights.transpose(0, 2, 1, 3).reshape(x_q.shape[0], h, 1, s)

    def __call__(self, x_q, x_kv, mask, deterministic=True, bias=None):
        k, v = self.project_kv(x_kv)
        return self.attend_kv(x_q, k, v, mask, deterministic, bias)[0]
