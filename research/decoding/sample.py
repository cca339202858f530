"""Ancestral sampling with temperature, top-k and nucleus (top-p) filtering.

Shares the decoding loop with greedy search; only the token choice differs.
Randomness is explicit: the key for step i is `fold_in(rng, i)`, so the same
`rng` always yields the same output and no key is threaded through the loop.
`rng` may also hold one key per row; `generate.row_keys` derives them from
the seed and each source sentence, so a sentence's sample does not depend on
which batch, or which row of it, the sentence lands in.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from research.data.batch import BOS, EOS
from research.decoding.constraints import Processor
from research.decoding.loop import StepFn, decode_loop


def filter_logits(logits: jax.Array, temperature: float, top_k: int, top_p: float) -> jax.Array:
    """Applies temperature, then top-k, then top-p; removed ids get -inf.

    The order follows common practice (e.g. Hugging Face generate): the
    nucleus is measured on the tempered distribution that is sampled from.

    Args:
      logits: [B, V] unnormalised scores.
      temperature: > 0; below 1 sharpens, above 1 flattens.
      top_k: keep the k highest ids; 0 disables. Ties with the k-th value
        are kept too (sorting, not lax.top_k, so k need not be static).
      top_p: keep the smallest set of most likely ids whose probability mass
        reaches top_p (the most likely id is always kept); 1.0 disables.

    Returns:
      [B, V] float32 logits to sample from.
    """
    logits = logits.astype(jnp.float32) / temperature
    if top_k > 0:
        kth = jnp.sort(logits, axis=-1)[:, -min(top_k, logits.shape[-1])]  # [B]
        logits = jnp.where(logits < kth[:, None], -jnp.inf, logits)
    if top_p < 1.0:
        sorted_logits = jnp.sort(logits, axis=-1)[:, ::-1]                  # [B, V] descending
        probs = jax.nn.softmax(sorted_logits, axis=-1)
        mass_before = jnp.cumsum(probs, axis=-1) - probs                    # exclusive cumsum
        kept = mass_before < top_p                                          # position 0 always kept
        threshold = jnp.min(jnp.where(kept, sorted_logits, jnp.inf), axis=-1)  # [B]
        logits = jnp.where(logits < threshold[:, None], -jnp.inf, logits)
    return logits


def sample(
    step_fn: StepFn,
    state: Any,
    rng: jax.Array,
    max_steps: int,
    max_len: jax.Array,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    bos: int = BOS,
    eos: int = EOS,
    process: Processor | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Draws one sequence per row from the (filtered) model distribution.

    Args:
      step_fn: `step_fn(state, tokens [B]) -> (logits [B, V], new_state)`.
      state: pytree, every leaf with leading axis B.
      rng: a typed PRNG key (`jax.random.key`) shared by every row, or [B]
        keys, one per row; same keys, same output.
      max_steps: static length of the output buffer.
      max_len: [B] int32 per-row cap on generated tokens, EOS included.
      temperature, top_k, top_p: Python numbers fixed at trace time (see
        `filter_logits`); top_k=0 and top_p=1.0 switch the filters off.
      bos, eos: start and end ids.
      process: output constraints (`constraints.processor`), or None.

    Returns:
      tokens [B, max_steps], lengths [B], scores [B], with the conventions of
      `greedy`. Scores are log-probabilities under the unfiltered model at
      temperature 1, so they are comparable with greedy and beam scores.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}; use greedy() for argmax decoding")
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0 (0 = off), got {top_k}")
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")

    if not jax.dtypes.issubdtype(rng.dtype, jax.dtypes.prng_key):
        raise ValueError(f"rng must be a typed key from jax.random.key, got an array of {rng.dtype}")
    if rng.ndim > 1:
        raise ValueError(f"rng must be one key or [B] keys, got shape {rng.shape}")

    def choose(logits: jax.Array, step: jax.Array) -> jax.Array:
        filtered = filter_logits(logits, temperature, top_k, top_p)
        if rng.ndim == 0:
            return jax.random.categorical(jax.random.fold_in(rng, step), filtered, axis=-1)
        keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(rng, step)  # [B]
        return jax.vmap(jax.random.categorical)(keys, filtered)

    return decode_loop(step_fn, state, choose, max_steps, max_len, bos, eos, process)
