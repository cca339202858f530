"""The one masked softmax (transformer and recurrent attention both use it), and the cross-attention that a
source row's beams share, against NumPy."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.models.layers.attention import MultiHeadAttention, masked_softmax


def _reference(scores, mask):
    """Row by row: softmax over the kept positions, zeros elsewhere; a row with none kept is all zeros."""
    out = np.zeros_like(scores)
    for idx in np.ndindex(scores.shape[:-1]):
        kept = mask[idx]
        if kept.any():
            e = np.exp(scores[idx][kept] - scores[idx][kept].max())
            out[idx][kept] = e / e.sum()
    return out


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_masked_softmax_matches_numpy_and_gives_zeros_to_a_row_without_keys(dtype):
    rng = np.random.default_rng(0)
    scores = jnp.asarray(5 * rng.normal(size=(3, 2, 6)), dtype)
    mask = rng.random((3, 2, 6)) < 0.6
    mask[0, 0] = True
    mask[1, 1] = False  # a pad query: it sees no key at all
    got = masked_softmax(scores, jnp.asarray(mask))
    assert got.dtype == jnp.float32 and got.shape == scores.shape
    expected = _reference(np.asarray(scores.astype(jnp.float32), np.float64), mask)
    np.testing.assert_allclose(np.asarray(got), expected, atol=1e-6)
    assert (np.asarray(got)[~mask] == 0).all()


def test_shared_cross_attention_matches_numpy_attention_of_each_hypothesis():
    """`attend_shared`: hypothesis n = g * K + j queries source row g's keys and values, projected once per
    row; against multi-head attention written out in NumPy for each hypothesis on its own row."""
    g, kk, s, d, h = 3, 4, 5, 8, 2
    dh = d // h
    rng = np.random.default_rng(1)
    x_q = rng.normal(size=(g * kk, 1, d)).astype(np.float32)
    memory = rng.normal(size=(g, s, d)).astype(np.float32)
    mask = np.ones((g, s), bool)
    mask[1, 3:] = False  # row 1 has two pads
    mha = MultiHeadAttention(h, d)
    params = mha.init(jax.random.PRNGKey(0), jnp.asarray(x_q), jnp.asarray(memory[np.arange(g * kk) // kk]),
                      jnp.ones((g * kk, 1, s), bool))
    k, v = mha.apply(params, jnp.asarray(memory), method=MultiHeadAttention.project_shared)
    assert k.shape == (g, h, dh, s) and v.shape == (g, h, s, dh)
    out, weights = mha.apply(params, jnp.asarray(x_q), k, v, jnp.asarray(mask), method=MultiHeadAttention.attend_shared)

    p = jax.tree.map(np.asarray, params["params"])
    dense = lambda x, layer: np.tensordot(x, p[layer]["kernel"], axes=1) + p[layer]["bias"]
    for n in range(g * kk):
        row = n // kk
        q = dense(x_q[n, 0], "query")  # [H, Dh]
        keys, values = dense(memory[row], "key"), dense(memory[row], "value")  # [S, H, Dh]
        scores = np.einsum("hd,shd->hs", q, keys) / np.sqrt(dh)
        w = _reference(scores, np.broadcast_to(mask[row], scores.shape))
        ctx = np.einsum("hs,shd->hd", w, values)
        expected = np.tensordot(ctx, p["out"]["kernel"], axes=2) + p["out"]["bias"]
        np.testing.assert_allclose(np.asarray(weights[n, :, 0]), w, atol=1e-6)
        np.testing.assert_allclose(np.asarray(out[n, 0]), expected, atol=1e-5)
    assert (np.asarray(weights)[kk:2 * kk, :, 0, 3:] == 0).all()  # row 1's pads get no weight
