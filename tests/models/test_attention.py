"""The one masked softmax (transformer and recurrent attention both use it) against NumPy."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from research.models.layers.attention import masked_softmax


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
