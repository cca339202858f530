"""The train state: a plain pytree, so jit, sharding and checkpoints treat it alike."""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct


@struct.dataclass
class TrainState:
    step: jax.Array  # int32 scalar: optimizer updates applied so far
    params: Any
    opt_state: Any


def create(model, tx: optax.GradientTransformation, example_batch: dict, rng: jax.Array) -> TrainState:
    """Initialises parameters from `rng` with the shapes of `example_batch`."""
    params = jax.jit(lambda r, b: model.init({"params": r}, b)["params"])(rng, example_batch)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params))


def param_count(params) -> int:
    return int(sum(x.size for x in jax.tree.leaves(params)))
