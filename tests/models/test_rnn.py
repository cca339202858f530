"""Recurrent pieces against hand-written references."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.models.layers.rnn import RNNLayer


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _gate(m, k: int, hidden: int):
    """Block k of a projection that holds the gates side by side ([..., gates * hidden])."""
    return m[..., k * hidden:(k + 1) * hidden]


def _numpy_elman(x, w, b, u, bu, h):
    """h' = tanh(W x + b + U h + b_u)."""
    return np.tanh(x @ w + b + h @ u + bu)


def _numpy_gru(x, w, b, u, bu, h):
    """The GRU (Cho et al. 2014) with the reset gate applied after U_n, as cuDNN and PyTorch do:
    r = s(W_r x + U_r h), z = s(W_z x + U_z h), n = tanh(W_n x + r * (U_n h)), h' = (1 - z) n + z h,
    each product with its bias; the gates lie side by side as [r | z | n] in W, b, U and b_u."""
    pre_x = lambda k: x @ _gate(w, k, h.shape[-1]) + _gate(b, k, h.shape[-1])
    pre_h = lambda k: h @ _gate(u, k, h.shape[-1]) + _gate(bu, k, h.shape[-1])
    r, z = sigmoid(pre_x(0) + pre_h(0)), sigmoid(pre_x(1) + pre_h(1))
    n = np.tanh(pre_x(2) + r * pre_h(2))
    return (1.0 - z) * n + z * h


def _numpy_lstm(x, w, b, u, bu, state):
    """The LSTM with a forget gate (Gers et al. 2000); the state is (c, h), the gates lie side by
    side as [i | f | g | o]: c' = s(f) c + s(i) tanh(g), h' = s(o) tanh(c')."""
    c, h = state
    pre = lambda k: (x @ _gate(w, k, h.shape[-1]) + _gate(b, k, h.shape[-1])
                     + h @ _gate(u, k, h.shape[-1]) + _gate(bu, k, h.shape[-1]))
    c = sigmoid(pre(1)) * c + sigmoid(pre(0)) * np.tanh(pre(2))
    return c, sigmoid(pre(3)) * np.tanh(c)


NUMPY_CELLS = {"elman": _numpy_elman, "gru": _numpy_gru, "lstm": _numpy_lstm}


def _numpy_layer(cell, x, params, valid, reverse=False, state=None):
    """A reference cell over x [B, T, E] in float64 from `state` (None: zeros), carried unchanged over pads.

    Returns:
      (outputs [B, T, H], zeros at pads; final state: h [B, H], or (c, h) for lstm).
    """
    w, b = np.asarray(params["input"]["kernel"], np.float64), np.asarray(params["input"]["bias"], np.float64)
    u, bu = np.asarray(params["recurrent"], np.float64), np.asarray(params["recurrent_bias"], np.float64)
    bsz, t, _ = x.shape
    zero = np.zeros((bsz, u.shape[0]))
    if state is None:
        state = (zero, zero) if cell == "lstm" else zero
    outs = np.zeros((bsz, t, u.shape[0]))
    for i in reversed(range(t)) if reverse else range(t):
        keep = valid[:, i : i + 1]
        new = NUMPY_CELLS[cell](x[:, i].astype(np.float64), w, b, u, bu, state)
        state = tuple(np.where(keep, n, s) for n, s in zip(new, state)) if cell == "lstm" else np.where(keep, new, state)
        outs[:, i] = np.where(keep, new[1] if cell == "lstm" else new, 0.0)
    return outs, state


def _random_params(layer, x, segments, rng):
    """Every parameter drawn at random: biases start at zero, which would hide a bias added in the wrong place."""
    shapes = layer.init(jax.random.PRNGKey(0), x, segments)["params"]
    return jax.tree.map(lambda p: rng.normal(scale=0.7, size=p.shape).astype(np.float32), shapes)


@pytest.mark.parametrize("cell", ["elman", "gru", "lstm"])
@pytest.mark.parametrize("reverse", [False, True])
def test_cell_matches_numpy_reference(cell, reverse):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5, 4)).astype(np.float32)
    segments = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], np.int32)
    layer = RNNLayer(cell, 6, reverse=reverse)
    params = _random_params(layer, x, segments, rng)
    out, final = layer.apply({"params": params}, x, segments)
    ref_out, ref_final = _numpy_layer(cell, x, params, segments > 0, reverse)
    np.testing.assert_allclose(out, ref_out, atol=1e-5)
    jax.tree.map(lambda a, r: np.testing.assert_allclose(a, r, atol=1e-5), final, ref_final)


@pytest.mark.parametrize("cell, gates", [("gru", 3), ("lstm", 4)])
def test_the_reference_tells_every_two_gates_apart(cell, gates):
    """Guards the test above: with such parameters, any two gates swapped give another output."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5, 4)).astype(np.float32)  # several steps: the forget gate acts from the second
    segments = np.ones((3, 5), np.int32)
    params = _random_params(RNNLayer(cell, 6), x, segments, rng)
    base, _ = _numpy_layer(cell, x, params, segments > 0)
    for i in range(gates):
        for j in range(i + 1, gates):
            order = list(range(gates))
            order[i], order[j] = j, i
            swap = lambda m: np.concatenate([_gate(m, k, 6) for k in order], -1)
            swapped = jax.tree.map(swap, params)
            out, _ = _numpy_layer(cell, x, swapped, segments > 0)
            assert np.abs(out - base).max() > 0.05, (cell, i, j)


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


@pytest.mark.parametrize("cell", ["elman", "gru", "lstm"])
@pytest.mark.parametrize("reverse", [False, True])
def test_a_given_start_state_is_where_the_first_segment_starts(cell, reverse):
    """A decoder's bridged state: the NumPy reference run from it, pads carried; and a later packed segment
    still starts from zeros, as it would alone."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 6, 4)).astype(np.float32)
    segments = np.array([[1] * 6, [1] * 4 + [0] * 2, [1] * 3 + [2] * 3], np.int32)
    layer = RNNLayer(cell, 5, reverse=reverse)
    params = _random_params(layer, x, segments, rng)
    h0 = rng.normal(size=(3, 5)).astype(np.float32)
    state = (rng.normal(size=(3, 5)).astype(np.float32), h0) if cell == "lstm" else h0
    out, final = layer.apply({"params": params}, x, segments, state)
    ref_out, ref_final = _numpy_layer(cell, x[:2], params, segments[:2] > 0, reverse, jax.tree.map(lambda s: s[:2], state))
    np.testing.assert_allclose(out[:2], ref_out, atol=1e-5)
    jax.tree.map(lambda a, r: np.testing.assert_allclose(a[:2], r, atol=1e-5), final, ref_final)
    assert np.abs(ref_out - _numpy_layer(cell, x[:2], params, segments[:2] > 0, reverse)[0]).max() > 0.05  # it matters
    # Row 2 holds two segments: the one first in scan order starts from the given state, the other from zeros.
    first, second = (slice(3, 6), slice(0, 3)) if reverse else (slice(0, 3), slice(3, 6))
    one = lambda s: jax.tree.map(lambda a: a[2:3], s)
    ref_first, _ = _numpy_layer(cell, x[2:3, first], params, np.ones((1, 3), bool), reverse, one(state))
    ref_second, _ = _numpy_layer(cell, x[2:3, second], params, np.ones((1, 3), bool), reverse)
    np.testing.assert_allclose(out[2:3, first], ref_first, atol=1e-5)
    np.testing.assert_allclose(out[2:3, second], ref_second, atol=1e-5)


@pytest.mark.parametrize("residual", [False, True])
def test_the_stacked_encoder_matches_the_numpy_stack(residual):
    """research/models/encoders/rnn.py: 3 bidirectional LSTM layers against the NumPy layers composed by hand;
    with `residual`, layers 2 and 3 add their input to their output (layer 1's input is the embedding, 4 wide,
    and its output 2 x 5: no residual there). The final state is the top layer's, residual or not."""
    from research.models.encoders.rnn import RNNEncoder, RNNEncoderConfig  # noqa: PLC0415

    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 6, 4)).astype(np.float32)
    segments = np.array([[1] * 6, [1] * 4 + [0] * 2], np.int32)
    enc = RNNEncoder(RNNEncoderConfig(cell="lstm", hidden_size=5, num_layers=3, residual=residual))
    shapes = enc.init(jax.random.PRNGKey(0), x, segments, None)["params"]
    params = jax.tree.map(lambda p: rng.normal(scale=0.5, size=p.shape).astype(np.float32), shapes)
    got = enc.apply({"params": params}, x, segments, None)
    valid = segments > 0
    h = x.astype(np.float64)
    for i in range(3):
        fwd, (_, h_fwd) = _numpy_layer("lstm", h, params[f"layer{i}_fwd"], valid)
        bwd, (_, h_bwd) = _numpy_layer("lstm", h, params[f"layer{i}_bwd"], valid, reverse=True)
        out = np.concatenate([fwd, bwd], -1)
        h = out + h if residual and i else out
    np.testing.assert_allclose(got.memory, h, atol=1e-5)
    np.testing.assert_allclose(got.final_state, np.concatenate([h_fwd, h_bwd], -1), atol=1e-5)
