"""The LSTM scan's written-out backward pass against JAX's autodiff of the plain scan of the same cell."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.models.layers.lstm_scan import lstm_scan
from research.models.layers.rnn import scan_cell

T, B, H = 7, 5, 6


def _inputs(seed: int):
    rng = np.random.default_rng(seed)
    f32 = lambda *shape: jnp.asarray(rng.normal(scale=0.8, size=shape), jnp.float32)
    u, xw, c0, h0 = f32(H, 4 * H), f32(T, B, 4 * H), f32(B, H), f32(B, H)
    valid = np.ones((T, B), bool)
    valid[5:, 1] = False  # a row padded at the end
    valid[2:, 3] = False
    start = np.zeros((T, B), bool)
    start[3, 0] = start[5, 2] = True  # packed segments: the state restarts from zeros there
    start[1, 4] = True
    # cotangents of the outputs (zero at pads, where the outputs are the constant 0) and of the final state
    d_ys = f32(T, B, H) * jnp.asarray(valid)[..., None]
    d_c, d_h = f32(B, H), f32(B, H)
    return (u, xw, c0, h0), (jnp.asarray(valid), jnp.asarray(start)), (d_ys, d_c, d_h)


def _objective(run, masks, cotangents):
    """A scalar whose gradient is the VJP of `run` at the given cotangents."""
    d_ys, d_c, d_h = cotangents

    def f(u, xw, c0, h0):
        ys, (c, h) = run(u, xw, c0, h0, *masks)
        return (ys * d_ys).sum() + (c * d_c).sum() + (h * d_h).sum()

    return f


def _reference(reverse):
    """The same recurrence through `scan_cell`, which autodiff differentiates step by step."""
    return lambda u, xw, c0, h0, valid, start: scan_cell("lstm", xw, (c0, h0), valid, start, u, 0.0, reverse)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_outputs_and_gradients_equal_autodiff_of_the_plain_scan(reverse, seed):
    args, masks, cotangents = _inputs(seed)
    ours = lambda *a: lstm_scan(*a, reverse=reverse)
    got_ys, got_final = jax.jit(ours)(*args, *masks)
    want_ys, want_final = jax.jit(_reference(reverse))(*args, *masks)
    np.testing.assert_allclose(got_ys, want_ys, rtol=1e-6, atol=1e-6)
    for g, w in zip(got_final, want_final):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)
    got = jax.jit(jax.grad(_objective(ours, masks, cotangents), argnums=(0, 1, 2, 3)))(*args)
    want = jax.jit(jax.grad(_objective(_reference(reverse), masks, cotangents), argnums=(0, 1, 2, 3)))(*args)
    for name, g, w in zip(("u", "xw", "c0", "h0"), got, want):
        assert float(jnp.abs(w).max()) > 1e-2, name  # every gradient is exercised
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-5, err_msg=name)


def test_the_masks_change_the_gradients():
    """Not a vacuous fixture: pads and restarts move the gradient of every input, so a backward pass that
    ignored either would fail the test above."""
    args, (valid, start), cotangents = _inputs(0)
    grads = lambda masks: jax.grad(_objective(_reference(False), masks, cotangents), argnums=(0, 1, 2, 3))(*args)
    base = grads((valid, start))
    for masks in ((jnp.ones_like(valid), start), (valid, jnp.zeros_like(start))):
        other = grads(masks)
        for name, g, w in zip(("u", "xw", "c0", "h0"), other, base):
            assert float(jnp.abs(g - w).max()) > 1e-3, name


def test_a_restart_cuts_the_gradient_to_the_steps_before():
    """Row 4 restarts at step 1: nothing after it reaches c0, h0 or step 0 through the state."""
    args, masks, (d_ys, d_c, d_h) = _inputs(0)
    only_late = (d_ys.at[0].set(0.0), d_c, d_h)
    _, d_xw, d_c0, d_h0 = jax.grad(_objective(lambda *a: lstm_scan(*a), masks, only_late), argnums=(0, 1, 2, 3))(*args)
    assert float(jnp.abs(d_c0[4]).max()) == 0.0 and float(jnp.abs(d_h0[4]).max()) == 0.0
    assert float(jnp.abs(d_xw[0, 4]).max()) == 0.0
    assert float(jnp.abs(d_c0[0]).max()) > 0.0  # row 0 restarts later: its start state matters


def test_bfloat16_inputs_get_bfloat16_gradients_close_to_float32():
    """trainer.precision=bf16 runs the scan in bfloat16: the cotangents keep each input's dtype, and the
    gradients stay within bfloat16's precision of the float32 ones (measured: 0.6-1.5% of each gradient's
    largest entry; the bound is 5%)."""
    args, masks, cotangents = _inputs(0)
    bf = jax.tree.map(lambda a: a.astype(jnp.bfloat16), args)
    got = jax.grad(_objective(lambda *a: lstm_scan(*a), masks, cotangents), argnums=(0, 1, 2, 3))(*bf)
    want = jax.grad(_objective(lambda *a: lstm_scan(*a), masks, cotangents), argnums=(0, 1, 2, 3))(*args)
    for name, g, w in zip(("u", "xw", "c0", "h0"), got, want):
        assert g.dtype == jnp.bfloat16, name
        scale = float(jnp.abs(w).max())
        assert float(jnp.abs(g.astype(jnp.float32) - w).max()) < 0.05 * scale, name
