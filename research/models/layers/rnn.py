"""One recurrent layer over a sequence: padding- and segment-aware, as a scan."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from research.models.layers.cells import CELLS
from research.models.layers.lstm_scan import lstm_scan


def scan_cell(cell: str, xw, state, valid, start, u, bu, reverse: bool = False):
    """Any cell of cells.py over time-major inputs, differentiated by autodiff.

    xw [T, B, G*H] (input projection with its bias); state: the cell's state before the first step (in
    scan order), which also restarts from zeros where `start` [T, B] is set; at pads (`valid` [T, B]
    False) it is carried unchanged. -> (outputs [T, B, H], zero at pads; the state after the last step).
    """
    step = CELLS[cell].step

    def body(state, inputs):
        xw_t, valid_t, start_t = inputs
        state = jax.tree.map(lambda s: jnp.where(start_t[:, None], 0, s), state)
        new, h = step(xw_t, state, u, bu)
        keep = valid_t[:, None]
        state = jax.tree.map(lambda n, s: jnp.where(keep, n, s), new, state)
        return state, jnp.where(keep, h, 0.0)

    final, outputs = jax.lax.scan(body, state, (xw, valid, start), reverse=reverse)
    return outputs, final


class RNNLayer(nn.Module):
    """A single-direction recurrent layer.

    At pads the state is carried unchanged, so the state after the scan is the
    state at each row's last real token (first real token when reversed). Every
    row starts from the zero state (or the state it is given), and every later
    packed segment from zeros.
    """

    cell: str
    hidden: int
    reverse: bool = False
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        g = CELLS[self.cell].gates
        self.input = nn.Dense(g * self.hidden, dtype=self.dtype, name="input")
        init = nn.initializers.orthogonal()
        self.u = self.param("recurrent", lambda k, s: jnp.concatenate([init(kk, (s[0], s[0])) for kk in jax.random.split(k, g)], 1), (self.hidden, g * self.hidden))
        self.bu = self.param("recurrent_bias", nn.initializers.zeros, (g * self.hidden,))

    def weights(self):
        """(U, b_u) for a caller that runs the recurrence itself (cached decoding)."""
        return self.u.astype(self.dtype), self.bu.astype(self.dtype)

    def __call__(self, x, segments, state=None):
        """Runs the layer.

        Args:
          x: [B, T, E] inputs.
          segments: [B, T] int, 0 at pads.
          state: the state before the first step (a decoder's bridged state); None: zeros. It is kept at the
            row's first segment; every later segment restarts from zeros.
        Returns:
          (outputs [B, T, H] with zeros at pads, final state).
        """
        xw = self.input(x)  # [B, T, G*H], all steps in one matmul
        valid = segments > 0
        # A segment starts where the previous step (in scan order) belongs to another segment.
        prev = jnp.pad(segments, ((0, 0), (0, 1)))[:, 1:] if self.reverse else jnp.pad(segments, ((0, 0), (1, 0)))[:, :-1]
        start = valid & (prev != segments)
        if state is not None:  # the first segment keeps the given state: restart only after a real token
            seen = jnp.cumsum(valid[:, ::-1] if self.reverse else valid, axis=1) > 1
            start = start & (seen[:, ::-1] if self.reverse else seen)
        else:
            state = CELLS[self.cell].zero_state(x.shape[0], self.hidden, self.dtype)  # a pytree of [B, H]
        u, bu = self.weights()
        swap = lambda a: jnp.swapaxes(a, 0, 1)
        if self.cell == "lstm":  # the same recurrence with a hand-written backward scan (lstm_scan.py)
            hs, final = lstm_scan(u, swap(xw + bu), *state, swap(valid), swap(start), reverse=self.reverse)
        else:
            hs, final = scan_cell(self.cell, swap(xw), state, swap(valid), swap(start), u, bu, reverse=self.reverse)
        return swap(hs), final

    def step(self, x_t, state):
        """One time step for one row batch: x_t [B, E] -> (state, h [B, H])."""
        u, bu = self.weights()
        return CELLS[self.cell].step(self.input(x_t), state, u, bu)
