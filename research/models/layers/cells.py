"""Recurrent cells as pure functions of their parameters.

Each cell splits into an input part, computed for all time steps at once
(one large matmul outside the scan), and a recurrent part inside the scan.
Keeping the scan body a pure function of arrays lets it run under
`lax.scan` and lets the encoder and the cached decoder share one code path.

State layout: `elman` and `gru` carry h [B, H]; `lstm` carries (c, h).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp


class Cell(NamedTuple):
    gates: int  # input/recurrent projections are [*, gates * H]
    zero_state: Callable  # (batch, hidden, dtype) -> state
    step: Callable  # (xw_t [B, G*H], state, U [H, G*H], bu [G*H]) -> (state, h [B, H])
    hidden: Callable  # state -> h [B, H]


def _elman_step(xw, h, u, bu):
    # h_t = tanh(W x_t + U h_{t-1} + b); W x_t + b arrives precomputed as xw.
    h = jnp.tanh(xw + h @ u + bu)
    return h, h


def _gru_step(xw, h, u, bu):
    hw = h @ u + bu
    xr, xz, xn = jnp.split(xw, 3, axis=-1)
    hr, hz, hn = jnp.split(hw, 3, axis=-1)
    r = jax.nn.sigmoid(xr + hr)
    z = jax.nn.sigmoid(xz + hz)
    n = jnp.tanh(xn + r * hn)
    h = (1.0 - z) * n + z * h
    return h, h


def _lstm_step(xw, state, u, bu):
    c, h = state
    i, f, g, o = jnp.split(xw + h @ u + bu, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return (c, h), h


def _zeros(b, n, dtype):
    return jnp.zeros((b, n), dtype)


CELLS: dict[str, Cell] = {
    "elman": Cell(1, _zeros, _elman_step, lambda s: s),
    "gru": Cell(3, _zeros, _gru_step, lambda s: s),
    "lstm": Cell(4, lambda b, n, d: (_zeros(b, n, d), _zeros(b, n, d)), _lstm_step, lambda s: s[1]),
}


def state_from_hidden(cell: str, h, c=None):
    """Builds a cell state from a hidden vector (and a cell vector for LSTM)."""
    return (jnp.zeros_like(h) if c is None else c, h) if cell == "lstm" else h
