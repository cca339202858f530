"""The tied output layer's hand-written backward pass equals autodiff of h @ E^T."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.models.layers.output import tied_logits
from research.training.losses import top1


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_tied_logits_value_and_gradients_equal_autodiff(dtype):
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    h = jax.random.normal(keys[0], (3, 5, 16)).astype(dtype)
    table = jax.random.normal(keys[1], (40, 16)).astype(dtype)
    cot = jax.random.normal(keys[2], (3, 5, 40)).astype(dtype)
    ours = lambda h, e: (tied_logits(h, e).astype(jnp.float32) * cot).sum()
    reference = lambda h, e: (jnp.dot(h, e.T).astype(jnp.float32) * cot).sum()
    tol = 1e-5 if dtype == jnp.float32 else 2e-2
    np.testing.assert_allclose(tied_logits(h, table).astype(jnp.float32), jnp.dot(h, table.T).astype(jnp.float32), rtol=tol, atol=tol)
    for a, b in zip(jax.grad(ours, (0, 1))(h, table), jax.grad(reference, (0, 1))(h, table)):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a.astype(jnp.float32), b.astype(jnp.float32), rtol=tol, atol=tol * 10)


def test_top1_is_argmax_match_and_counts_ties_as_correct():
    logits = jax.random.normal(jax.random.PRNGKey(1), (4, 6, 30))
    targets = jax.random.randint(jax.random.PRNGKey(2), (4, 6), 0, 30)
    targets = targets.at[0, :3].set(logits[0, :3].argmax(-1))  # some certainly right
    np.testing.assert_array_equal(top1(logits, targets), (logits.argmax(-1) == targets).astype(jnp.float32))
    tie = jnp.array([[[1.0, 3.0, 3.0, 0.0]]])
    assert float(top1(tie, jnp.array([[2]]))[0, 0]) == 1.0 and float(top1(tie, jnp.array([[0]]))[0, 0]) == 0.0
