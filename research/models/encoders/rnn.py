"""Recurrent encoder: stacked (bi)directional Elman, LSTM or GRU layers run as scans."""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp
from flax import linen as nn

from research.models.encoders import ENCODERS
from research.models.interfaces import EncoderOutput
from research.models.layers.cells import CELLS
from research.models.layers.dropout import Dropout
from research.models.layers.rnn import RNNLayer
from research.registry import check


@dataclasses.dataclass(frozen=True)
class RNNEncoderConfig:
    cell: str = "lstm"  # elman | lstm | gru
    hidden_size: int = 256  # per direction
    num_layers: int = 2
    bidirectional: bool = True
    dropout: float = 0.1  # between layers and on the output
    # Each layer above the first adds its input to its output (Sockeye's --rnn-residual-connections; GNMT, Wu
    # et al. 2016, from the third layer): the gradient reaches the lower layers of a deep stack without crossing
    # every LSTM above them. No parameters: every layer above the first reads and writes H * directions.
    residual: bool = False

    def __post_init__(self):
        check(self.cell in CELLS, "cell", f"'{self.cell}' is not one of {sorted(CELLS)}")
        check(self.hidden_size > 0, "hidden_size", "must be positive")
        check(self.num_layers > 0, "num_layers", "must be positive")
        check(0.0 <= self.dropout < 1.0, "dropout", "must be in [0, 1)")


@ENCODERS.register("rnn", config=RNNEncoderConfig)
class RNNEncoder(nn.Module):
    """Memory: top-layer outputs [B, S, H * directions]; final state: the top
    layer's hidden state at the last real token (forward) concatenated with the
    backward state at the first token, [B, H * directions]."""

    config: RNNEncoderConfig
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        c = self.config
        dirs = (False, True) if c.bidirectional else (False,)
        self.layers = [
            [RNNLayer(c.cell, c.hidden_size, reverse=r, dtype=self.dtype, name=f"layer{i}_{'bwd' if r else 'fwd'}") for r in dirs]
            for i in range(c.num_layers)
        ]
        self.drop = Dropout(c.dropout)

    def __call__(self, x, segments, positions, deterministic=True):
        del positions  # order is implicit in the recurrence; segments restart the state
        hidden = CELLS[self.config.cell].hidden
        for i, directions in enumerate(self.layers):
            skip = x  # the residual path is not dropped, as in a Transformer block
            if i:
                x = self.drop(x, deterministic=deterministic)
            runs = [layer(x, segments) for layer in directions]
            x = jnp.concatenate([out for out, _ in runs], -1)
            if i and self.config.residual:
                x = x + skip
            finals = [hidden(state) for _, state in runs]
        x = self.drop(x, deterministic=deterministic)
        return EncoderOutput(memory=x, segments=segments, final_state=jnp.concatenate(finals, -1))
