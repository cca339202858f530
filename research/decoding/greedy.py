"""Greedy search: at every step take the single most likely token.

The cheapest search and the reference the others are checked against (beam
search with beam 1 and sampling with top_k=1 must reproduce it exactly).
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from research.data.batch import BOS, EOS
from research.decoding.constraints import Processor
from research.decoding.loop import StepFn, decode_loop


def _argmax(logits: jax.Array, step: jax.Array) -> jax.Array:
    """[B, V] -> [B]; ties go to the lowest id, as in jnp.argmax."""
    del step  # greedy needs no per-step randomness
    return jnp.argmax(logits, axis=-1)


def greedy(
    step_fn: StepFn,
    state: Any,
    max_steps: int,
    max_len: jax.Array,
    bos: int = BOS,
    eos: int = EOS,
    process: Processor | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Decodes every row by repeatedly taking the argmax token.

    Args:
      step_fn: `step_fn(state, tokens [B]) -> (logits [B, V], new_state)`.
      state: pytree, every leaf with leading axis B.
      max_steps: static length of the output buffer (mark it static under jit).
      max_len: [B] int32 per-row cap on generated tokens, EOS included.
      bos, eos: start and end ids.
      process: output constraints (`constraints.processor`), or None.

    Returns:
      tokens [B, max_steps] int32: generated ids without BOS; the EOS that
        ended a row is included, PAD follows it.
      lengths [B] int32: generated tokens per row, counting the EOS. A row
        that hits max_len/max_steps first stops there, without EOS.
      scores [B] float32: summed log-probabilities of the generated tokens.
    """
    return decode_loop(step_fn, state, _argmax, max_steps, max_len, bos, eos, process)
