"""Transformer decoder: causal self-attention, cross-attention, feed-forward.

With `memory=False` (a decoder-only language model, research/models/interfaces.py)
the layers have no cross-attention and no cross-attention block: causal
self-attention and feed-forward only, the GPT layout.

With `return_attention=True` (model.pointer_generator, research/models/layers/pointer_generator.py) the
decoder also returns the last layer's cross-attention averaged over its
heads: (features, weights [B, T, S]) from `__call__`, ((features, weights
[B, S]), cache) from `step`. The mean over the last layer's heads rather
than a dedicated head: it adds no parameter and leaves every head free to
attend as translation needs, while the copy loss still shapes the last
layer's attention as a whole (fairseq's pointer-generator takes the same
mean, over an alignment layer's heads).
"""
from __future__ import annotations

import jax.numpy as jnp
from flax import linen as nn

from research.models.decoders import DECODERS
from research.models.encoders.transformer import TransformerConfig
from research.models.interfaces import Stationary
from research.models.layers.attention import MultiHeadAttention
from research.models.layers.dropout import Dropout
from research.models.layers.masks import causal_mask, segment_mask
from research.models.layers.positions import Positions, RelativeBias
from research.models.layers.transformer_blocks import FeedForward, Residual, embed_positions
from research.registry import check


@DECODERS.register("transformer", config=TransformerConfig)
class TransformerDecoder(nn.Module):
    """Cache per layer: self-attention keys [B, H, Dh, beams, max_len] and values
    [B, H, beams, max_len, Dh] filled up to `index` (Stationary: each hypothesis's
    history is found through `history`), and the cross-attention keys [B, H, Dh, S]
    and values [B, H, S, Dh] of the memory, projected once and shared by a row's
    beams (none without a memory)."""

    config: TransformerConfig
    dtype: jnp.dtype = jnp.float32
    memory: bool = True  # False: no cross-attention; called with enc=None (interfaces.py)
    return_attention: bool = False  # also return the last layer's cross-attention (model.pointer_generator; module docstring)
    supports_packing = True

    def setup(self):
        c = self.config
        mha = lambda name, p: MultiHeadAttention(c.num_heads, c.d_model, p, self.dtype, name=name)
        n = c.num_layers
        self.self_attn = [mha(f"self_attn{i}", c.attention_dropout) for i in range(n)]
        self.cross_attn = [mha(f"cross_attn{i}", c.attention_dropout) for i in range(n)] if self.memory else None
        self.ffn = [FeedForward(c.d_model, c.d_ff, self.dtype, name=f"ffn{i}") for i in range(n)]
        block = lambda name: Residual(c.norm, c.dropout, name=name)
        self.blocks = [(block(f"self_attn_block{i}"), block(f"cross_attn_block{i}") if self.memory else None,
                        block(f"ffn_block{i}")) for i in range(n)]
        self.final_norm = nn.LayerNorm(dtype=self.dtype, name="final_norm") if c.norm == "pre" else None
        self.positions = Positions(c.positions, c.max_len, c.d_model, name="positions")
        # One table for every layer's self-attention, one-sided since no query sees a later key (T5's decoder);
        # cross-attention has none, as in T5: source and target positions are not on one axis.
        self.relative_bias = (RelativeBias(c.num_heads, c.relative_buckets, c.relative_max_distance, bidirectional=False,
                                           name="relative_bias") if c.positions == "relative" else None)
        self.drop = Dropout(c.dropout)  # on the embeddings; each block has its own

    def _layers(self, x, self_attend, cross_attend, deterministic):
        for i in range(self.config.num_layers):
            self_block, cross_block, ffn_block = self.blocks[i]
            x = self_block(x, lambda h: self_attend(i, h), deterministic)
            if cross_block is not None:
                x = cross_block(x, lambda h: cross_attend(i, h), deterministic)
            x = ffn_block(x, self.ffn[i], deterministic)
        return self.final_norm(x) if self.final_norm is not None else x

    def __call__(self, enc, y, segments, positions, deterministic=True):
        """y: [B, T, E] embedded shifted targets -> features [B, T, d_model]."""
        x = embed_positions(y, positions, self.positions, self.drop, deterministic)
        self_mask = causal_mask(segments)
        bias = self.relative_bias(positions, positions) if self.relative_bias is not None else None
        self_attend = lambda i, h: self.self_attn[i](h, h, self_mask, deterministic, bias)
        check(not self.return_attention or self.memory, "model.pointer_generator", "needs a decoder with a memory to copy from")
        if not self.memory:
            return self._layers(x, self_attend, None, deterministic)
        cross_mask = segment_mask(segments, enc.segments)
        seen = []

        def cross(i, h):
            out, w = self.cross_attn[i].attend_kv(h, *self.cross_attn[i].project_kv(enc.memory), cross_mask, deterministic)
            self.sow("intermediates", "cross_attention", w)
            seen.append(w)  # [B, H, T, S]
            return out

        x = self._layers(x, self_attend, cross, deterministic)
        return (x, seen[-1].mean(1)) if self.return_attention else x

    def init_cache(self, enc, max_len: int, batch: int | None = None):
        """`batch`: the rows, read only without a memory (enc=None)."""
        b = enc.memory.shape[0] if self.memory else batch
        c = self.config
        h, dh = c.num_heads, c.d_model // c.num_heads
        cache = {
            "index": jnp.zeros((b,), jnp.int32),
            # Which beam slot of the buffers holds each position of this row's history: beam search
            # reorders this table, not the buffers (Stationary). Positions not yet written are masked.
            "history": jnp.zeros((b, max_len), jnp.int32),
            # Per layer keys [B, H, Dh, beams, L] and values [B, H, beams, L, Dh] (attend_history).
            "self_kv": [(Stationary(jnp.zeros((b, h, dh, 1, max_len), self.dtype), beam_axis=3),
                         Stationary(jnp.zeros((b, h, 1, max_len, dh), self.dtype), beam_axis=2))
                        for _ in range(c.num_layers)],
        }
        if self.memory:
            # Projected once, one copy per source row that all its beams read (Stationary, no beam axis).
            shared = lambda x: Stationary(x, beam_axis=None)
            cache["cross_kv"] = [tuple(map(shared, a.project_shared(enc.memory))) for a in self.cross_attn]
            cache["cross_mask"] = shared(enc.mask)
        return cache

    def step(self, enc, cache, y_t):
        """y_t: [N, E] the embedded previous token -> (features [N, d_model], cache).

        Hypothesis n = g * K + j (source row g, beam slot j; K = 1 outside beam search)
        writes its new key and value in place at slot j of row g, position `index`, and
        reads its history through `history`; no buffer is copied at any step. No slot's
        position is written twice: every hypothesis of a search advances one position
        per step, and its children take the history of written positions with them.
        """
        index, buffers = cache["index"], cache["self_kv"]
        g, _, kk, max_len, _ = buffers[0][1].value.shape
        x = embed_positions(y_t[:, None], index[:, None], self.positions, self.drop, True)
        rows = jnp.arange(index.shape[0])
        row, slot = rows // kk, rows % kk
        history = cache["history"].at[rows, index].set(slot, mode="drop")  # past the buffer: dropped, as masked
        self_mask = (jnp.arange(max_len)[None, :] <= index[:, None])[:, None, :]  # [N, 1, L]
        bias = None
        if self.relative_bias is not None:  # the query at `index` over positions 0 .. L - 1: [N, H, 1, L]
            bias = self.relative_bias(index[:, None], jnp.broadcast_to(jnp.arange(max_len), (index.shape[0], max_len)))
        new_kv = []

        def self_attend(i, h):
            k, v = self.self_attn[i].project_kv(h)  # [N, 1, H, Dh]
            ck, cv = buffers[i]
            ck = ck.replace(value=ck.value.at[row, :, :, slot, index].set(k[:, 0], mode="drop"))
            cv = cv.replace(value=cv.value.at[row, :, slot, index].set(v[:, 0], mode="drop"))
            new_kv.append((ck, cv))
            return self.self_attn[i].attend_history(h, ck.value, cv.value, history, self_mask, bias)

        seen = []

        def cross(i, h):
            k, v = cache["cross_kv"][i]
            out, w = self.cross_attn[i].attend_shared(h, k.value, v.value, cache["cross_mask"].value)
            seen.append(w)
            return out

        x = self._layers(x, self_attend, cross if self.memory else None, True)
        out = (x[:, 0], seen[-1].mean(1)[:, 0]) if self.return_attention else x[:, 0]
        return out, {**cache, "index": index + 1, "history": history, "self_kv": new_kv}
