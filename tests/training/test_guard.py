"""A non-finite loss or gradient never reaches the parameters; too many in a row stop the run."""
from __future__ import annotations

import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.config import REPO
from research.run_dir import load
from research.training import state as train_state
from tests.conftest import tiny_overrides
from tests.helpers.steps import setup


def _same(a, b) -> bool:
    return all(np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_a_nan_step_leaves_the_state_untouched():
    s, batch = setup(("transformer", "transformer"))
    step = jax.jit(s.step_fn())
    state = train_state.create(s.model, s.tx, batch, jax.random.PRNGKey(0))
    for i in range(2):  # finite steps first: Adam's moments are non-zero
        state, m = step(state, batch, jax.random.PRNGKey(i))
        assert float(m["skipped"]) == 0.0
    assert int(state.step) == 2

    # One poisoned weight makes the loss and every gradient NaN.
    first = jax.tree_util.tree_flatten_with_path(state.params)[0][0][0]
    poison = lambda path, x: x.at[(0,) * x.ndim].set(jnp.nan) if path == first else x
    bad = state.replace(params=jax.tree_util.tree_map_with_path(poison, state.params))
    after, m = step(bad, batch, jax.random.PRNGKey(3))
    assert float(m["skipped"]) == 1.0 and not np.isfinite(float(m["loss"]))
    assert int(after.step) == 2  # the update count, hence the learning rate, does not move
    assert _same(after.params, bad.params) and _same(after.opt_state, bad.opt_state)


def test_a_finite_step_is_the_plain_update_and_copies_no_state_buffer():
    """The guard is a conditional around the update, so with a finite loss the step is exactly the update
    written without any guard; and the compiled, donating step copies no buffer of the state it updates
    (the `where` guard it replaced made XLA copy every Adam moment first)."""
    import optax

    s, batch = setup(("transformer", "transformer"))
    state = train_state.create(s.model, s.tx, batch, jax.random.PRNGKey(0))
    rng = jax.random.PRNGKey(5)
    compiled = jax.jit(s.step_fn(), donate_argnums=0).lower(state, batch, rng).compile()
    after, m = compiled(jax.tree.map(jnp.copy, state), batch, rng)  # the copy is donated, `state` kept
    assert float(m["skipped"]) == 0.0

    from research.training.steps import gradients

    @jax.jit
    def unguarded(state):
        grads, _ = gradients(state.params, batch, rng, model=s.model, label_smoothing=s.run.trainer.label_smoothing)
        direction, opt_state = s.tx.update(grads, state.opt_state, state.params)
        rate = s.lr(state.step, None)
        return optax.apply_updates(state.params, jax.tree.map(lambda u: rate * u, direction)), opt_state

    params, opt_state = unguarded(state)
    for got, want in zip(jax.tree.leaves((after.params, after.opt_state)), jax.tree.leaves((params, opt_state))):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-7)
    assert int(after.step) == 1

    hlo = compiled.as_text()
    entry = hlo[hlo.index("\nENTRY "):]
    inputs = set(re.findall(r"%([\w.\-]+) = f32\[[\d,]+\]\S* parameter\(", entry))
    assert len(inputs) >= len(jax.tree.leaves(state.params))  # the parse found the state's buffers
    copied = [name for name in re.findall(r" copy\(%([\w.\-]+)\)", entry) if name in inputs]
    assert not copied, f"{len(copied)} state buffers copied, e.g. {copied[:3]}"


@pytest.mark.slow  # `make test-slow`: 2026-12-03 durations, 30-380 s each
def test_divergence_stops_the_run_and_keeps_the_last_checkpoint(tmp_path):
    # A learning rate of 1e30 blows the weights up within a step or two; every later loss is NaN.
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "research.train", *tiny_overrides("transformer", "transformer"),
           "trainer.max_steps=40", "trainer.eval_every=40", "trainer.log_every=1", "trainer.checkpoint_every=1",
           "trainer.max_bad_steps=3", "data.max_train_examples=200", "data.max_shapes=1",
           "optim.learning_rate=1e30", "optim.warmup_steps=1", "optim.schedule=constant",
           f"tokenizer.cache_dir={tmp_path}/spm", f"hydra.run.dir={run}"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    printed = out.stdout + out.stderr  # Hydra's logging goes to stdout
    assert out.returncode == 3, printed[-3000:]
    assert "not finite for 3 steps in a row; stopping" in printed and "optim.learning_rate" in printed
    log = (run / "train.log").read_text()
    assert log.count("update skipped") == 3 and "(3 in a row" in log
    assert not (run / "summary.json").exists()

    # The checkpoint it names is complete, verified against its digest, and finite.
    loaded = load(run, checkpoint="last")
    assert f"The last checkpoint (step {loaded.step})" in printed
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(loaded.params))
