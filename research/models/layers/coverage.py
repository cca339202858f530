"""Coverage (See et al. 2017, section 2.3): how much attention each source position has had so far.

At target step t the coverage vector is the sum of the earlier steps'
attention weights, c_t = sum_{t' < t} a_t'. A decoder that attends again to
positions it has already covered repeats itself; the coverage loss

    covloss_t = sum_i min(a_t,i, c_t,i)

charges each step for the attention it puts where attention has already been,
bounded by 1 per step (the a_t sum to 1), so it cannot dominate the token
loss. Training adds `trainer.lambda_coverage` x covloss_t at every real target
token (See et al. use 1).

Any decoder with attention has it: the loss reads the attention the decoder
returns with `return_attention=True` (research/models/interfaces.py), the
RNN's own or the last layer's mean over heads for the CNN and the
Transformer, the same distribution copy attention uses. Only the RNN decoder
also *feeds* c_t to its attention scores (decoder.coverage,
research/models/layers/rnn_attention.py).

Packed rows need nothing more: a target segment attends only to its own
source segment, so an earlier segment's coverage lies on positions where this
one's attention is 0 and adds nothing to the minimum. Pad queries attend to
nothing and cost nothing.
"""
from __future__ import annotations

import jax.numpy as jnp


def vector(attention):
    """attention [B, T, S] -> the coverage before each step [B, T, S]: 0 at t = 0, then the running sum."""
    a = attention.astype(jnp.float32)
    return jnp.cumsum(a, axis=1) - a


def loss(attention):
    """attention [B, T, S] -> covloss [B, T] = sum_i min(a_t,i, c_t,i) (module docstring)."""
    a = attention.astype(jnp.float32)
    return jnp.minimum(a, vector(a)).sum(-1)
