"""Convolutional encoder in the ConvS2S style: gated convolutions with residuals."""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp
from flax import linen as nn

from research.models.encoders import ENCODERS
from research.models.interfaces import EncoderOutput
from research.models.layers.conv import RESIDUAL_SCALE, GatedConv, windows
from research.models.layers.dropout import Dropout
from research.models.layers.pooling import masked_mean
from research.models.layers.positions import Positions
from research.registry import check


@dataclasses.dataclass(frozen=True)
class CNNConfig:
    """The CNN encoder's; the decoder's extends it (`decoders/cnn.py`)."""

    d_model: int = 256  # embedding and output width
    channels: int = 256  # width inside the convolution stack
    num_layers: int = 3
    kernel_size: int = 3  # the encoder centres it; the decoder looks back kernel_size - 1 tokens
    dropout: float = 0.1
    max_len: int = 1024  # learned positions

    def __post_init__(self):
        check(self.kernel_size >= 1, "kernel_size", "must be at least 1")
        check(self.num_layers > 0, "num_layers", "must be positive")
        check(self.d_model > 0, "d_model", "must be positive")
        check(self.channels > 0, "channels", "must be positive")
        check(self.max_len > 0, "max_len", "must be positive")
        check(0.0 <= self.dropout < 1.0, "dropout", "must be in [0, 1)")


@ENCODERS.register("cnn", config=CNNConfig)
class CNNEncoder(nn.Module):
    config: CNNConfig
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, segments, positions, deterministic=True):
        c = self.config
        drop = lambda y: Dropout(c.dropout)(y, deterministic=deterministic)
        x = drop(Positions("learned", c.max_len, c.d_model, name="positions")(x, positions))
        h = nn.Dense(c.channels, dtype=self.dtype, name="to_channels")(x)
        for i in range(c.num_layers):
            y = GatedConv(c.channels, c.kernel_size, c.dropout, self.dtype, name=f"conv{i}")(
                windows(drop(h), segments, c.kernel_size, causal=False), deterministic)
            h = (h + y) * RESIDUAL_SCALE
        h = jnp.where((segments > 0)[..., None], h, 0.0)
        memory = nn.Dense(c.d_model, dtype=self.dtype, name="from_channels")(h)
        return EncoderOutput(memory=memory, segments=segments, final_state=masked_mean(memory, segments))
