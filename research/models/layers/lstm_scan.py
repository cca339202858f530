"""The LSTM recurrence as one scan, with its backward scan written out.

Why by hand: reverse-mode autodiff of `lax.scan` over `cells._lstm_step`
stores the intermediates of every step that its backward pass reads (gate
activations, the padding selects' masks, states), each its own small write
per step, and its backward scan accumulates the recurrent weight's gradient
h_{t-1}^T dz_t step by step, a second small matmul inside the loop. On the
2-core host a step's small operations cost a good part of what its matmul
does, so their count matters. Here the forward scan keeps three things per step (the gate
pre-activations, the state going in), the backward scan recomputes the gates
from them and does one matmul per step (dz_t U^T), and the recurrent weight's
gradient is one large matmul over all steps afterwards. Measured on the
benchmark's LSTM pair (2-core AMD EPYC, alternated rounds in one process):
in the encoder alone, 808/780, 825/814, 882/830, 924/923 ms per step; with
the decoder's layers too (decoders/rnn.py `_layerwise`), 808/736, 825/749,
882/770, 924/799 ms. A scan of one layer, forward and backward, at
[32 steps, 64 rows, 256]: 28-31 ms with autodiff against 24 ms here in
the same rounds (44 against 38 in two slower ones).

Semantics (those of `layers.rnn.RNNLayer` and `cells._lstm_step`):
  the state starts at (c0, h0); at a step where `start` is set it restarts
  from zeros first (a packed segment's first token); at a step where `valid`
  is 0 (a pad) the state is carried unchanged and the output is 0.
  Gates are ordered i, f, g, o: c' = s(f) c + s(i) tanh(g), h' = s(o) tanh(c').
The input projection and both biases are added before: `xw` = W x_t + b + b_u.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def lstm_scan(u, xw, c0, h0, valid, start, reverse: bool = False):
    """Runs the recurrence over the time axis.

    Args:
      u: [H, 4H] the recurrent weight.
      xw: [T, B, 4H] the input projections plus biases, time-major.
      c0, h0: [B, H] the state before the first step (in scan order).
      valid: [T, B] bool, False at pads; start: [T, B] bool, True where the state restarts from zeros.
      reverse: scan from the last step to the first.
    Returns:
      (outputs [T, B, H], zero at pads; (c, h) after the last step).
    """
    return _lstm(reverse, u, xw, c0, h0, valid, start)


def _gates(z):
    i, f, g, o = jnp.split(z, 4, -1)
    return jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)


def _forward_scan(reverse, u, xw, c0, h0, valid, start):
    def body(state, inputs):
        c, h = state
        x, keep, restart = inputs
        c = jnp.where(restart[:, None], 0, c)
        h = jnp.where(restart[:, None], 0, h)
        z = x + h @ u
        i, f, g, o = _gates(z)
        c_new = f * c + i * g
        h_new = o * jnp.tanh(c_new)
        keep = keep[:, None]
        out = (jnp.where(keep, c_new, c), jnp.where(keep, h_new, h))
        return out, (jnp.where(keep, h_new, 0), z, c, h)  # output; what the backward scan reads

    return jax.lax.scan(body, (c0, h0), (xw, valid, start), reverse=reverse)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _lstm(reverse, u, xw, c0, h0, valid, start):
    final, (ys, _, _, _) = _forward_scan(reverse, u, xw, c0, h0, valid, start)
    return ys, final


def _lstm_forward(reverse, u, xw, c0, h0, valid, start):
    final, (ys, zs, cs, hs) = _forward_scan(reverse, u, xw, c0, h0, valid, start)
    return (ys, final), (u, zs, cs, hs, valid, start)


def _lstm_backward(reverse, residuals, cotangents):
    u, zs, cs, hs, valid, start = residuals
    d_ys, (d_c, d_h) = cotangents
    u_t = u.T

    def body(carry, inputs):
        d_c, d_h = carry  # gradient of the state after this step
        z, c, d_y, keep, restart = inputs  # c: the cell state going in (after any restart)
        keep = keep[:, None]
        i, f, g, o = _gates(z)
        tanh_c = jnp.tanh(f * c + i * g)
        d_h_new = jnp.where(keep, d_y + d_h, 0)  # at a pad the new state is dropped
        d_c_new = jnp.where(keep, d_c, 0) + d_h_new * o * (1 - tanh_c * tanh_c)
        d_z = jnp.concatenate([d_c_new * g * i * (1 - i), d_c_new * c * f * (1 - f),
                               d_c_new * i * (1 - g * g), d_h_new * tanh_c * o * (1 - o)], -1)
        d_c_in = d_c_new * f + jnp.where(keep, 0, d_c)  # at a pad the state passes through
        d_h_in = d_z @ u_t + jnp.where(keep, 0, d_h)
        restart = restart[:, None]  # a restart cuts the state off from the steps before
        return (jnp.where(restart, 0, d_c_in), jnp.where(restart, 0, d_h_in)), d_z

    (d_c0, d_h0), d_zs = jax.lax.scan(body, (d_c, d_h), (zs, cs, d_ys, valid, start), reverse=not reverse)
    d_u = jnp.einsum("tbh,tbg->hg", hs, d_zs)  # all steps in one matmul
    return d_u, d_zs, d_c0, d_h0, None, None


_lstm.defvjp(_lstm_forward, _lstm_backward)
