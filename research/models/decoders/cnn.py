"""ConvS2S decoder: causal gated convolutions with attention in every layer.

The cache holds, per layer, the last kernel_size - 1 inputs of its
convolution, plus the memory projected once for each layer's attention.
With `memory=False` (a decoder-only language model, research/models/interfaces.py)
the layers have no attention, no query projection and nothing projected:
causal gated convolutions with their residual connections only.
With `return_attention=True` (model.pointer_generator, research/models/layers/pointer_generator.py) the
decoder also returns the last layer's attention over the source, averaged
over its heads (ConvS2S has one): (features, weights [B, T, S]) from
`__call__`, ((features, weights [B, S]), cache) from `step`. The last
layer's, because its context is the one nearest the output layer.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import linen as nn

from research.models.decoders import DECODERS
from research.models.encoders.cnn import CNNConfig
from research.models.layers.attention import MultiHeadAttention
from research.models.layers.conv import RESIDUAL_SCALE, GatedConv, windows
from research.models.layers.dropout import Dropout
from research.models.layers.masks import segment_mask
from research.models.layers.positions import Positions
from research.registry import check


@dataclasses.dataclass(frozen=True)
class CNNDecoderConfig(CNNConfig):
    """The encoder's sizes, plus the attention over the memory in every layer."""

    num_heads: int = 1  # ConvS2S uses one head

    def __post_init__(self):
        super().__post_init__()
        check(self.num_heads > 0, "num_heads", "must be positive")
        check(self.channels % self.num_heads == 0, "num_heads",
              f"channels {self.channels} is not divisible by num_heads {self.num_heads}")


@DECODERS.register("cnn", config=CNNDecoderConfig)
class CNNDecoder(nn.Module):
    config: CNNDecoderConfig
    dtype: jnp.dtype = jnp.float32
    memory: bool = True  # False: no attention over a memory; called with enc=None (interfaces.py)
    return_attention: bool = False  # also return the last layer's attention (model.pointer_generator; see the module docstring)
    supports_packing = True

    def setup(self):
        c = self.config
        n = c.num_layers
        self.positions = Positions("learned", c.max_len, c.d_model, name="positions")
        self.to_channels = nn.Dense(c.channels, dtype=self.dtype, name="to_channels")
        self.convs = [GatedConv(c.channels, c.kernel_size, c.dropout, self.dtype, name=f"conv{i}") for i in range(n)]
        if self.memory:
            # ConvS2S forms the attention query from the layer state plus the target embedding.
            self.query_embed = [nn.Dense(c.channels, dtype=self.dtype, name=f"query_embed{i}") for i in range(n)]
            self.attn = [MultiHeadAttention(c.num_heads, c.channels, 0.0, self.dtype, name=f"attn{i}") for i in range(n)]
        self.from_channels = nn.Dense(c.d_model, dtype=self.dtype, name="from_channels")
        self.drop = Dropout(c.dropout)

    def _output(self, h, seen: list):
        """The features and, with return_attention, the last layer's attention averaged over its heads."""
        features = self.from_channels(h)
        return (features, seen[-1].mean(1)) if self.return_attention else features

    def _layer(self, i, h, g, window, attend, deterministic):
        """h, g: [B, T, C] state and embedding; window: [B, T, k*C] of dropped-out h; attend: None without
        a memory."""
        y = self.convs[i](window, deterministic)
        if attend is not None:
            query = (y + self.query_embed[i](g)) * RESIDUAL_SCALE
            y = (y + attend(i, query)) * RESIDUAL_SCALE
        return (h + y) * RESIDUAL_SCALE

    def __call__(self, enc, y, segments, positions, deterministic=True):
        c = self.config
        g = self.drop(self.positions(y, positions), deterministic=deterministic)
        h = self.to_channels(g)
        attend, seen = None, []
        check(not self.return_attention or self.memory, "model.pointer_generator", "needs a decoder with a memory to copy from")
        if self.memory:
            mask = segment_mask(segments, enc.segments)

            def attend(i, q):
                out, w = self.attn[i].attend_kv(q, *self.attn[i].project_kv(enc.memory), mask)
                self.sow("intermediates", "cross_attention", w)
                seen.append(w)  # [B, H, T, S]
                return out

        for i in range(c.num_layers):
            window = windows(self.drop(h, deterministic=deterministic), segments, c.kernel_size, causal=True)
            h = self._layer(i, h, g, window, attend, deterministic)
        return self._output(h, seen)

    def init_cache(self, enc, max_len: int, batch: int | None = None):
        """`batch`: the rows, read only without a memory (enc=None)."""
        del max_len
        c = self.config
        b = enc.memory.shape[0] if self.memory else batch
        cache = {
            "index": jnp.zeros((b,), jnp.int32),
            "inputs": [jnp.zeros((b, c.kernel_size - 1, c.channels), self.dtype) for _ in range(c.num_layers)],
        }
        if self.memory:
            cache["kv"] = [a.project_kv(enc.memory) for a in self.attn]
        return cache

    def step(self, enc, cache, y_t):
        c = self.config
        index = cache["index"]
        g = self.positions(y_t[:, None], index[:, None])  # [B, 1, E]
        h = self.to_channels(g)
        attend, seen = None, []
        if self.memory:
            mask = enc.mask[:, None, :]

            def attend(i, q):
                out, w = self.attn[i].attend_kv(q, *cache["kv"][i], mask)
                seen.append(w)
                return out

        new_inputs = []
        for i in range(c.num_layers):
            past = jnp.concatenate([cache["inputs"][i], h], 1)  # [B, k, C], oldest first
            new_inputs.append(past[:, 1:])
            h = self._layer(i, h, g, past.reshape(past.shape[0], 1, -1), attend, True)
        out = jax.tree.map(lambda x: x[:, 0], self._output(h, seen))  # [B, 1, ...] -> [B, ...]
        return out, {**cache, "index": index + 1, "inputs": new_inputs}
