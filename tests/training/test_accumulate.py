"""Gradient accumulation and rematerialisation change memory, not the update."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.training import state as train_state
from research.training.steps import gradients, micro_batches
from tests.helpers.steps import setup

TOL = 1e-5
PAIRS = [("transformer", "transformer"), ("rnn", "cnn")]  # every component kind, two compilations


def close(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=TOL, rtol=0)


def run(s, batch, steps: int = 2, **kw):
    """`steps` updates on the same batch (the first has learning rate 0: warm-up starts at 0)."""
    state = train_state.create(s.model, s.tx, batch, jax.random.PRNGKey(0))
    step = jax.jit(s.step_fn(**kw))
    for i in range(steps):
        state, m = step(state, batch, jax.random.PRNGKey(i))
    return state, m


@pytest.mark.parametrize("pair", PAIRS, ids="-".join)
@pytest.mark.slow  # `make test-slow`: 2026-12-03 durations, 30-380 s each
def test_accumulated_step_equals_one_big_batch(pair):
    s, batch = setup(pair)
    whole, m1 = run(s, batch)
    accumulated, m4 = run(s, batch, grad_accum=4)
    close(whole.params, accumulated.params)
    assert abs(float(m1["loss"]) - float(m4["loss"])) < TOL and float(m1["tokens"]) == float(m4["tokens"])
    assert float(m1["learning_rate"]) > 0  # the compared step did move the parameters


@pytest.mark.parametrize("pair, remat", [(("transformer", "transformer"), "dots"), (("rnn", "cnn"), "full")],
                         ids=["transformer-transformer-dots", "rnn-cnn-full"])
@pytest.mark.slow  # `make test-slow`: 2026-12-03 durations, 30-380 s each
def test_remat_gives_equal_gradients(pair, remat):
    s, batch = setup(pair)
    params = train_state.create(s.model, s.tx, batch, jax.random.PRNGKey(0)).params
    grad = lambda r: jax.jit(functools.partial(gradients, model=s.model, label_smoothing=0.1, remat=r))(
        params, batch, jax.random.PRNGKey(1))
    (g0, s0), (g1, s1) = grad("none"), grad(remat)
    close(g0, g1)
    assert float(s0["loss"]) == pytest.approx(float(s1["loss"]), abs=TOL)


def test_micro_batches_are_strided_and_checked():
    b = {"x": jnp.arange(8)[:, None]}
    assert micro_batches(b, 2)["x"][:, :, 0].tolist() == [[0, 2, 4, 6], [1, 3, 5, 7]]
    with pytest.raises(ValueError, match="grad_accum=3"):
        micro_batches(b, 3)
    with pytest.raises(ValueError, match="trainer.remat"):
        s, batch = setup(("cnn", "cnn"))
        gradients(None, batch, None, model=s.model, label_smoothing=0.0, remat="some")
