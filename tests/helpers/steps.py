"""A tiny pair's train step on random batches, set up so that two ways of computing a step can be compared."""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp

# Composed from the real config; dropout off (tiny_shape) so the runs are comparable. The
# constant learning rate makes every compared step move the parameters by about the same
# amount. eps: see tests/training/test_sharding.py for why it is raised and what holds at
# the shipped 1e-9.
OVERRIDES = ["optim.schedule=constant", "optim.warmup_steps=1", "optim.learning_rate=0.003", "optim.eps=1e-6"]


def tiny_shape():
    """13 rows: not divisible by a device count, so padding to whole rows per device is exercised too."""
    from research.benchmarks.shape import Shape

    return Shape(batch=13, src_len=8, tgt_len=7, d_model=32, d_ff=64, heads=2, layers=1, vocab=64, hidden=32,
                 channels=32, dropout=0.0)


def setup(pair, rows: int = 16, overrides=OVERRIDES):
    """-> (benchmarks.models.Setup, batch) for a tiny pair, with uneven real tokens per row."""
    from research.benchmarks import models

    shape = dataclasses.replace(tiny_shape(), batch=rows)
    s = models.setup(*pair, shape, extra=list(overrides))
    batch = {k: jnp.asarray(v) for k, v in models.random_batch(shape).items()}
    batch["target_segments"] = batch["target_segments"].at[3, 4:].set(0)  # uneven tokens per micro-batch
    return s, batch
