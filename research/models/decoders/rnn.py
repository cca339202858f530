"""Recurrent decoder: Elman/LSTM/GRU layers, a bridge from the encoder state,
attention after the top layer (JoeyNMT/Luong layout) and optional input feeding.

Every step runs the same `RNNDecoderStep`: called once per token when
decoding, and scanned over the target for training when a step reads the
step before's attention (input feeding, coverage), so both share parameters
and arithmetic exactly. Without either, the training pass computes the same
function layer by layer (`RNNDecoder._layerwise`): each layer one scan over
the target, the attention and combining layer over all steps at once.

With `memory=False` (a decoder-only language model, research/models/interfaces.py)
there is no bridge, no attention, no combine layer and no input feeding (there is
no attentional vector to feed): the stacked cells start from zeros, and from
zeros again at the first token of each packed segment, and the top layer's
output (after dropout) is the feature. The keys `attention`, `score`,
`num_heads` and `input_feeding` are then not read.

With `return_attention=True` (model.pointer_generator, research/models/layers/pointer_generator.py) the
decoder also returns its attention weights over the source, the ones its
context vector is made of: (features, weights [B, T, S]) from `__call__`,
((features, weights [B, S]), cache) from `step`. attention=none has none
and is refused.

With `coverage=True` (See et al. 2017) the carry also holds the coverage
vector, the sum of the attention weights of the earlier steps [B, S], which
the attention scores read (research/models/layers/rnn_attention.py); it
starts at zeros and the cache carries it when decoding. The coverage *loss*
is not here: it is the model's, for every decoder with attention
(research/models/layers/coverage.py).
"""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp
from flax import linen as nn

from research.models.decoders import DECODERS
from research.models.layers.cells import CELLS, state_from_hidden
from research.models.layers.dropout import Dropout
from research.models.layers.rnn import RNNLayer
from research.models.layers.rnn_attention import KINDS, SCORES, WITH_COVERAGE, RNNAttention
from research.registry import check


@dataclasses.dataclass(frozen=True)
class RNNDecoderConfig:
    d_model: int = 256  # width of the features handed to the output layer
    cell: str = "lstm"  # elman | lstm | gru
    hidden_size: int = 256
    num_layers: int = 2
    attention: str = "luong"  # none (encoder state only) | bahdanau | luong | multihead
    score: str = "general"  # luong only: dot | general
    num_heads: int = 4  # multihead only
    input_feeding: bool = True  # feed the previous attentional vector with the next input
    coverage: bool = False  # the attention also sees the sum of its past weights (See et al. 2017)
    dropout: float = 0.1

    def __post_init__(self):
        check(self.cell in CELLS, "cell", f"'{self.cell}' is not one of {sorted(CELLS)}")
        check(self.attention in KINDS, "attention", f"'{self.attention}' is not one of {list(KINDS)}")
        check(self.score in SCORES, "score", f"'{self.score}' is not one of {list(SCORES)}")
        check(self.d_model > 0, "d_model", "must be positive")
        check(self.hidden_size > 0, "hidden_size", "must be positive")
        check(self.num_layers > 0, "num_layers", "must be positive")
        check(self.num_heads > 0, "num_heads", "must be positive")
        check(self.attention != "multihead" or self.hidden_size % self.num_heads == 0,
              "num_heads", f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        check(0.0 <= self.dropout < 1.0, "dropout", "must be in [0, 1)")
        check(not self.coverage or self.attention in WITH_COVERAGE, "coverage",
              f"feeds the coverage vector to bahdanau or luong attention; attention={self.attention} has no "
              f"input for it (set decoder.attention to one of {', '.join(WITH_COVERAGE)} or decoder.coverage=false)")


class RNNDecoderStep(nn.Module):
    """One decoder step: carry = (layer states, fed-back attentional vector [B, H], coverage [B, S]); the
    vector is None without a memory, the coverage None unless config.coverage."""

    config: RNNDecoderConfig
    dtype: jnp.dtype = jnp.float32
    memory: bool = True  # False: no attention, no input feeding; context and the fed vector are None

    def setup(self):
        c = self.config
        self.layers = [RNNLayer(c.cell, c.hidden_size, dtype=self.dtype, name=f"layer{i}") for i in range(c.num_layers)]
        if self.memory:
            self.attention = RNNAttention(c.attention, c.score, c.hidden_size, c.num_heads, self.dtype,
                                          coverage=c.coverage, name="attention")
            self.combine = nn.Dense(c.hidden_size, use_bias=False, dtype=self.dtype, name="combine")
        self.drop = Dropout(c.dropout)

    def keys(self, memory):
        return self.attention.keys(memory)

    def __call__(self, carry, y_t, context, deterministic=True):
        """y_t [B, E]; context = (keys, memory, mask) -> (carry, (features [B, H], weights [B, S])).

        Without a memory: context, the carry's fed vector and the weights are None."""
        states, feed, coverage = carry
        x = jnp.concatenate([y_t, feed], -1) if self.memory and self.config.input_feeding else y_t
        new_states = []
        for i, (layer, state) in enumerate(zip(self.layers, states)):
            if i:
                x = self.drop(x, deterministic=deterministic)
            state, x = layer.step(x, state)
            new_states.append(state)
        if not self.memory:
            out, weights = x, None
        else:
            out, weights = self.attend(x, *context, coverage)
            if coverage is not None:
                coverage = coverage + weights.astype(coverage.dtype)
        out = self.drop(out, deterministic=deterministic)
        return (tuple(new_states), out if self.memory else None, coverage), (out, weights)

    def attend(self, x, keys, memory, mask, coverage=None):
        """The top layer's output x [B, H] (one step) or [B, T, H] (every step at once) -> (attentional vector
        tanh(W [x; context]) of x's shape, attention weights [..., S]); with attention=none, x itself and zero
        weights."""
        if self.config.attention == "none":
            return x, jnp.zeros(x.shape[:-1] + mask.shape[-1:], x.dtype)
        ctx, weights = self.attention(x, keys, memory, mask, coverage)
        return jnp.tanh(self.combine(jnp.concatenate([x, ctx], -1))), weights


@DECODERS.register("rnn", config=RNNDecoderConfig)
class RNNDecoder(nn.Module):
    """Cache: the layer states, the fed-back vector, the projected memory keys (the states only, without a
    memory)."""

    config: RNNDecoderConfig
    dtype: jnp.dtype = jnp.float32
    memory: bool = True  # False: no bridge, no attention; called with enc=None (interfaces.py)
    return_attention: bool = False  # also return the attention weights (model.pointer_generator; see the module docstring)
    supports_packing = False  # one bridged start state per row; packed rows hold several sources (with
    # memory=False the state restarts at each segment instead: a language model packs, research/tasks/lm.py)

    def setup(self):
        c = self.config
        check(not self.return_attention or (self.memory and c.attention != "none"), "model.pointer_generator",
              "needs a decoder with attention over the source to copy from; decoder.attention is none")
        self.cell = RNNDecoderStep(c, self.dtype, memory=self.memory, name="step")
        lstm = c.cell == "lstm"
        if self.memory:
            self.bridge_h = [nn.Dense(c.hidden_size, dtype=self.dtype, name=f"bridge_h{i}") for i in range(c.num_layers)]
            self.bridge_c = [nn.Dense(c.hidden_size, dtype=self.dtype, name=f"bridge_c{i}") for i in range(c.num_layers)] if lstm else None
        self.out = nn.Dense(c.d_model, dtype=self.dtype, name="to_model") if c.hidden_size != c.d_model else None

    def _start(self, enc, batch: int | None = None):
        """The bridge: initial layer states from the encoder's final state, a zero feed and (with coverage)
        zero coverage. Without a memory: zero states for `batch` rows, no feed, no coverage."""
        c = self.config
        if not self.memory:
            zero = CELLS[c.cell].zero_state
            return tuple(zero(batch, c.hidden_size, self.dtype) for _ in range(c.num_layers)), None, None
        s = enc.final_state
        states = tuple(
            state_from_hidden(c.cell, jnp.tanh(self.bridge_h[i](s)), jnp.tanh(self.bridge_c[i](s)) if self.bridge_c else None)
            for i in range(c.num_layers)
        )
        feed = jnp.zeros((s.shape[0], c.hidden_size), self.dtype)
        coverage = jnp.zeros(enc.mask.shape, jnp.float32) if c.coverage else None
        return states, feed, coverage

    def _features(self, h):
        return self.out(h) if self.out is not None else h

    def __call__(self, enc, y, segments, positions, deterministic=True):
        del positions
        if not self.memory:
            return self._features(self._layerwise(None, y, segments, deterministic)[0])
        if self.config.input_feeding or self.config.coverage:
            h, weights = self._stepwise(enc, y, deterministic)
        else:
            h, weights = self._layerwise(enc, y, segments, deterministic)
        self.sow("intermediates", "cross_attention", weights[:, None])  # [B, 1, T, S]
        return (self._features(h), weights) if self.return_attention else self._features(h)

    def _stepwise(self, enc, y, deterministic):
        """`RNNDecoderStep` scanned over y [B, T, E] -> (features [B, T, H], attention weights [B, T, S])."""
        context = (self.cell.keys(enc.memory), enc.memory, enc.mask)
        scan = nn.scan(
            lambda mdl, carry, y_t, ctx: mdl(carry, y_t, ctx, deterministic),
            variable_broadcast="params",
            split_rngs={"params": False, "dropout": True},
            in_axes=(1, nn.broadcast),
            out_axes=1,
        )
        _, (h, weights) = scan(self.cell, self._start(enc), y, context)
        return h, weights

    def _layerwise(self, enc, y, segments, deterministic):
        """The full-sequence pass when no step reads the one before it except through the recurrent states:
        without input feeding or coverage (or without a memory), each layer runs over the whole target as one
        scan (an LSTM's with its backward written out, layers/lstm_scan.py), and the attention and the
        combining layer run over every step at once. The same function as `RNNDecoderStep` step by step
        (the cached = uncached tests check it), with far fewer small operations per step: at the benchmark
        shape the LSTM pair's step took 736-799 ms against 780-923 ms scanning the step (lstm_scan.py's
        docstring gives the rounds). Layer by layer with autodiff's scans instead of lstm_scan's it gained
        nothing (README, Benchmarks).

        y [B, T, E] -> (features [B, T, H], attention weights [B, T, S]; None without a memory). Without a
        memory the layers start from zeros, and again at the first token of every segment; with one, from the
        bridged states (the decoder does not pack: one target per row)."""
        step = self.cell
        states = self._start(enc)[0] if self.memory else (None,) * self.config.num_layers
        x = y
        for i, (layer, state) in enumerate(zip(step.layers, states)):
            if i:
                x = step.drop(x, deterministic=deterministic)
            x, _ = layer(x, segments, state)
        if not self.memory:
            return step.drop(x, deterministic=deterministic), None
        out, weights = step.attend(x, step.keys(enc.memory), enc.memory, enc.mask)
        return step.drop(out, deterministic=deterministic), weights

    def init_cache(self, enc, max_len: int, batch: int | None = None):
        """`batch`: the rows, read only without a memory (enc=None)."""
        del max_len  # the recurrent state does not grow
        states, feed, coverage = self._start(enc, batch)
        if not self.memory:
            return {"states": states}
        cache = {"states": states, "feed": feed, "keys": self.cell.keys(enc.memory)}
        return {**cache, "coverage": coverage} if coverage is not None else cache

    def step(self, enc, cache, y_t):
        if not self.memory:
            (states, _, _), (h, _) = self.cell((cache["states"], None, None), y_t, None, True)
            return self._features(h), {"states": states}
        context = (cache["keys"], enc.memory, enc.mask)
        carry = (cache["states"], cache["feed"], cache.get("coverage"))
        (states, feed, coverage), (h, weights) = self.cell(carry, y_t, context, True)
        out = (self._features(h), weights) if self.return_attention else self._features(h)
        new = {**cache, "states": states, "feed": feed}
        return out, ({**new, "coverage": coverage} if coverage is not None else new)
