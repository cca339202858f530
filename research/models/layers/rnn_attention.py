"""Attention for a recurrent decoder: one query vector per step over the memory.

Scores: `bahdanau` (additive, v^T tanh(W_q q + W_k m)), `luong` with `dot`
(q . m) or `general` (q^T W m), both divided by sqrt(width) as in scaled
dot-product attention (unscaled scores saturated the softmax over
un-normalised CNN memories and stalled training), or `multihead`.
The memory-side projection does not depend on the step, so `keys` computes it
once per source and the decoder carries it through its scan.

With `coverage=True` (decoder.coverage, See et al. 2017; OpenNMT-py's
coverage_attn) the scores also see the coverage vector c, the sum of the
step's earlier attention weights over each source position: a learnt w_c c_i
is added to every key, inside the tanh for `bahdanau` (See et al.'s
v^T tanh(W_h h_i + W_s s_t + w_c c_i + b)) and before the product for `luong`
(there it adds (q . w_c) c_i to the score, a learnt per-step weight of how much
attention a position already had). `multihead` has no coverage input.
"""
from __future__ import annotations

import jax.numpy as jnp
from flax import linen as nn

from research.models.layers.attention import MultiHeadAttention, masked_softmax
from research.registry import check

KINDS = ("none", "bahdanau", "luong", "multihead")
SCORES = ("dot", "general")
WITH_COVERAGE = ("bahdanau", "luong")  # the kinds that take decoder.coverage


class RNNAttention(nn.Module):
    kind: str
    score: str
    hidden: int
    num_heads: int = 1
    dtype: jnp.dtype = jnp.float32
    coverage: bool = False  # the scores also see the coverage vector (module docstring)

    def setup(self):
        if self.kind == "bahdanau":
            self.w_k = nn.Dense(self.hidden, use_bias=False, dtype=self.dtype, name="key")
            self.w_q = nn.Dense(self.hidden, dtype=self.dtype, name="query")
            self.v = nn.Dense(1, use_bias=False, dtype=self.dtype, name="energy")
        elif self.kind == "luong":
            # `dot` needs the memory in the query's space; when the widths already
            # match it is used as it is, otherwise it is projected (then it equals general).
            self.w_k = nn.Dense(self.hidden, use_bias=False, dtype=self.dtype, name="key")
        elif self.kind == "multihead":
            self.mha = MultiHeadAttention(self.num_heads, self.hidden, 0.0, self.dtype, name="mha")
        if self.coverage:
            self.w_c = nn.Dense(self.hidden, use_bias=False, dtype=self.dtype, name="coverage")

    def keys(self, memory):
        """Step-independent projection of the memory [B, S, D_mem]."""
        if self.kind == "bahdanau":
            return self.w_k(memory)
        if self.kind == "luong":
            if self.score == "dot" and memory.shape[-1] == self.hidden:
                return memory
            return self.w_k(memory)
        if self.kind == "multihead":
            return self.mha.project_kv(memory)
        return jnp.zeros(memory.shape[:2] + (0,), memory.dtype)

    def __call__(self, query, keys, memory, mask, coverage=None):
        """One step: query [B, H], mask [B, S], coverage [B, S] (with `coverage=True`) -> (context [B, D_ctx],
        weights [B, S]). Every step at once (a decoder without input feeding or coverage): query [B, T, H]
        -> (context [B, T, D_ctx], weights [B, T, S]); each step's query attends alone, as in a step."""
        single = query.ndim == 2
        q = query[:, None] if single else query  # [B, T, H]
        if self.kind == "multihead":
            out, w = self.mha.attend_kv(q, *keys, mask[:, None, :])  # [B, T, D], [B, heads, T, S]
            weights = w.mean(1)  # [B, T, S]
        else:
            if self.coverage:
                check(single, "decoder.coverage", "needs the attention step by step (the coverage sums the steps before)")
                keys = keys + self.w_c(coverage[..., None].astype(keys.dtype))  # [B, S, H]
            if self.kind == "bahdanau":
                scores = self.v(jnp.tanh(self.w_q(q)[:, :, None, :] + keys[:, None]))[..., 0]  # [B, T, S]
            else:
                scores = jnp.einsum("bth,bsh->bts", q, keys) / jnp.sqrt(keys.shape[-1]).astype(keys.dtype)
            weights = masked_softmax(scores, mask[:, None, :]).astype(memory.dtype)  # [B, T, S]
            out = jnp.einsum("bts,bsd->btd", weights, memory)
        return (out[:, 0], weights[:, 0]) if single else (out, weights)
