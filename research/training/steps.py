"""Pure train and eval steps; the caller applies jit (and sharding, donation).

No device-specific code: the same functions run on CPU, GPU and TPU.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from research.training.losses import token_sums
from research.training.state import TrainState


def train_step(state: TrainState, batch: dict, rng: jax.Array, *, model, tx, lr, label_smoothing: float):
    """(state, batch, rng) -> (state, metrics): one AdamW update on the batch.

    The loss is averaged over the batch's real target tokens, so batches with
    different padding weigh their tokens equally.
    """

    def loss_fn(params):
        logits = model.apply({"params": params}, batch, deterministic=False, rngs={"dropout": rng})
        sums = token_sums(logits, batch, label_smoothing)
        return sums["loss"] / jnp.maximum(sums["tokens"], 1.0), sums

    (_, sums), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    tokens = jnp.maximum(sums["tokens"], 1.0)
    metrics = {
        "loss": sums["loss"] / tokens,
        "nll": sums["nll"] / tokens,
        "accuracy": sums["correct"] / tokens,
        "grad_norm": optax.global_norm(grads),
        "learning_rate": lr(state.step),
        "tokens": sums["tokens"],
    }
    return TrainState(step=state.step + 1, params=params, opt_state=opt_state), metrics


def eval_step(params, batch: dict, *, model, label_smoothing: float = 0.0) -> dict:
    """Token sums without dropout; the caller adds them up over a split."""
    logits = model.apply({"params": params}, batch, deterministic=True)
    return token_sums(logits, batch, label_smoothing)
