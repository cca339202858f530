"""Recurrent pieces against hand-written references."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.models.layers.rnn import RNNLayer


def _numpy_elman(x, w, b, u, bu, valid):
    """h_t = tanh(W x_t + U h_{t-1} + b), carried unchanged over pads."""
    bsz, t, _ = x.shape
    h = np.zeros((bsz, u.shape[0]))
    outs = np.zeros((bsz, t, u.shape[0]))
    for i in range(t):
        new = np.tanh(x[:, i] @ w + b + h @ u + bu)
        h = np.where(valid[:, i : i + 1], new, h)
        outs[:, i] = np.where(valid[:, i : i + 1], new, 0.0)
    return outs, h


def test_elman_cell_matches_numpy_reference():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5, 4)).astype(np.float32)
    segments = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], np.int32)
    layer = RNNLayer("elman", 6)
    params = layer.init(jax.random.PRNGKey(0), x, segments)["params"]
    out, final = layer.apply({"params": params}, x, segments)
    ref_out, ref_h = _numpy_elman(
        x, np.asarray(params["input"]["kernel"]), np.asarray(params["input"]["bias"]),
        np.asarray(params["recurrent"]), np.asarray(params["recurrent_bias"]), segments > 0,
    )
    np.testing.assert_allclose(out, ref_out, atol=1e-5)
    np.testing.assert_allclose(final, ref_h, atol=1e-5)


@pytest.mark.parametrize("cell", ["elman", "lstm", "gru"])
@pytest.mark.parametrize("reverse", [False, True])
def test_final_state_is_taken_at_the_last_real_token(cell, reverse):
    """Running a row alone at its true length gives the same final state as inside a padded batch."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 7, 4)).astype(np.float32)
    segments = np.array([[1] * 7, [1] * 3 + [0] * 4], np.int32)
    layer = RNNLayer(cell, 5, reverse=reverse)
    params = layer.init(jax.random.PRNGKey(0), x, segments)
    _, final = layer.apply(params, x, segments)
    _, alone = layer.apply(params, x[1:, :3], segments[1:, :3])
    take = lambda s: s[1] if cell == "lstm" else s  # compare h (and c below)
    np.testing.assert_allclose(take(final)[1], take(alone)[0], atol=1e-6)
    if cell == "lstm":
        np.testing.assert_allclose(final[0][1], alone[0][0], atol=1e-6)
    # Garbage in the pad positions changes nothing.
    noisy = x.copy()
    noisy[1, 3:] = 100.0
    _, final_noisy = layer.apply(params, noisy, segments)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), final, final_noisy)


def test_packed_segments_restart_the_state():
    """Two examples packed in one row give the states they give alone."""
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(1, 3, 4)).astype(np.float32), rng.normal(size=(1, 4, 4)).astype(np.float32)
    packed = jnp.concatenate([a, b], 1)
    seg = jnp.array([[1, 1, 1, 2, 2, 2, 2]])
    for reverse in (False, True):
        layer = RNNLayer("gru", 5, reverse=reverse)
        params = layer.init(jax.random.PRNGKey(0), packed, seg)
        out, _ = layer.apply(params, packed, seg)
        out_a, _ = layer.apply(params, a, jnp.ones((1, 3), jnp.int32))
        out_b, _ = layer.apply(params, b, jnp.ones((1, 4), jnp.int32))
        np.testing.assert_allclose(out, jnp.concatenate([out_a, out_b], 1), atol=1e-6)
