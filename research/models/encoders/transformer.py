"""Transformer encoder: self-attention blocks, pre-LN or post-LN."""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp
from flax import linen as nn

from research.models.encoders import ENCODERS
from research.models.interfaces import EncoderOutput
from research.models.layers.attention import MultiHeadAttention
from research.models.layers.dropout import Dropout
from research.models.layers.masks import segment_mask
from research.models.layers.pooling import masked_mean
from research.models.layers.positions import Positions, RelativeBias
from research.models.layers.transformer_blocks import FeedForward, Residual, embed_positions
from research.registry import check


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    """Shared by the transformer encoder and decoder."""

    d_model: int = 256
    num_layers: int = 3
    num_heads: int = 4
    d_ff: int = 1024
    dropout: float = 0.1  # on residual branches and embeddings
    attention_dropout: float = 0.0
    norm: str = "pre"  # pre | post: pre-LN trains without warm-up tricks; post-LN is the 2017 original
    positions: str = "sinusoidal"  # sinusoidal | learned | relative (T5's bias on the self-attention scores)
    max_len: int = 1024  # learned positions only
    relative_buckets: int = 32  # relative positions only: distance buckets (T5's default); the encoder's half for each side
    relative_max_distance: int = 128  # relative positions only: distances beyond share the last bucket of a side

    def __post_init__(self):
        check(self.d_model > 0, "d_model", "must be positive")
        check(self.num_heads > 0, "num_heads", "must be positive")
        check(self.d_model % self.num_heads == 0, "num_heads", f"d_model {self.d_model} is not divisible by num_heads {self.num_heads}")
        check(self.norm in ("pre", "post"), "norm", f"'{self.norm}' is not one of pre, post")
        check(self.positions in ("sinusoidal", "learned", "relative"), "positions",
              f"'{self.positions}' is not one of sinusoidal, learned, relative")
        check(self.relative_buckets >= 4 and self.relative_buckets % 4 == 0, "relative_buckets",
              "must be a positive multiple of 4 (half per side, and in each half exact buckets for a quarter)")
        check(self.relative_max_distance > self.relative_buckets // 2, "relative_max_distance",
              f"must exceed relative_buckets / 2 = {self.relative_buckets // 2}, the last exactly bucketed distance "
              "of the decoder's one-sided buckets (the encoder's are exact up to a quarter)")
        check(self.num_layers > 0, "num_layers", "must be positive")
        check(self.d_ff > 0, "d_ff", "must be positive")
        check(self.max_len > 0, "max_len", "must be positive")
        check(0.0 <= self.dropout < 1.0, "dropout", "must be in [0, 1)")
        check(0.0 <= self.attention_dropout < 1.0, "attention_dropout", "must be in [0, 1)")


@ENCODERS.register("transformer", config=TransformerConfig)
class TransformerEncoder(nn.Module):
    config: TransformerConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, segments, positions, deterministic=True):
        c = self.config
        x = embed_positions(x, positions, Positions(c.positions, c.max_len, c.d_model, name="positions"),
                            Dropout(c.dropout), deterministic)
        mask = segment_mask(segments, segments)
        bias = None
        if c.positions == "relative":  # one table for every layer, as T5
            bias = RelativeBias(c.num_heads, c.relative_buckets, c.relative_max_distance, name="relative_bias")(positions, positions)
        for i in range(c.num_layers):
            attn = MultiHeadAttention(c.num_heads, c.d_model, c.attention_dropout, self.dtype, name=f"self_attn{i}")
            ffn = FeedForward(c.d_model, c.d_ff, self.dtype, name=f"ffn{i}")
            x = Residual(c.norm, c.dropout, name=f"attn_block{i}")(x, lambda y: attn(y, y, mask, deterministic, bias), deterministic)
            x = Residual(c.norm, c.dropout, name=f"ffn_block{i}")(x, ffn, deterministic)
        if c.norm == "pre":
            x = nn.LayerNorm(dtype=self.dtype, name="final_norm")(x)
        return EncoderOutput(memory=x, segments=segments, final_state=masked_mean(x, segments))
