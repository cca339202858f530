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


def _init_fn(model, tx: optax.GradientTransformation, batch: dict):
    """rng -> TrainState, from the shapes and dtypes of `batch` alone (its values are never read).

    Parameters depend only on the key and the configs, so zeros of any batch
    shape give the same ones, and no real batch has to be drawn from the data
    stream (a resumed run continues it where the checkpoint left it).
    """
    spec = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in batch.items()}

    def init(rng: jax.Array) -> TrainState:
        zeros = {k: jnp.zeros(s.shape, s.dtype) for k, s in spec.items()}
        params = model.init({"params": rng}, zeros)["params"]
        return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params))

    return init


def create(model, tx: optax.GradientTransformation, batch: dict, rng: jax.Array, sharding=None) -> TrainState:
    """Initialises the state for batches shaped like `batch` (arrays or `jax.ShapeDtypeStruct`s).

    `sharding`: where the state is placed (e.g. replicated over a mesh); None
    for the default device.
    """
    return jax.jit(_init_fn(model, tx, batch), out_shardings=sharding)(rng)


def abstract(model, tx: optax.GradientTransformation, batch: dict, rng: jax.Array, sharding=None) -> TrainState:
    """The state `create` would build, as `jax.ShapeDtypeStruct`s (with `sharding`), computing nothing:
    what a checkpoint is restored into."""
    shapes = jax.eval_shape(_init_fn(model, tx, batch), rng)
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), shapes)


def param_count(params) -> int:
    return int(sum(x.size for x in jax.tree.leaves(params)))
