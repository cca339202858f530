"""The one-hypothesis-per-row decoding loop shared by greedy search and sampling.

Greedy search and sampling differ only in how a token is picked from the
logits, so the loop is written once and takes that choice as a function.

The step callback contract (the only thing decoding knows about a model):

  step_fn(state, tokens [N] int32) -> (logits [N, V] float32, new_state)

Every leaf of `state` has the rows as its leading axis, so searches can tile
and reorder it without knowing what it holds. Decoding feeds BOS first.

Output convention, shared by every search in this package:
  tokens  [B, max_steps] int32: the generated ids, BOS excluded, the EOS that
          ended the row INCLUDED, PAD after it.
  lengths [B] int32: number of generated tokens, counting that EOS.
  scores  [B] float32: sum of the model's log-probabilities of those tokens.
A row that reaches its `max_len` (or `max_steps`) without EOS stops there and
has no EOS in its tokens.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from research.data.batch import BOS, EOS, PAD
from research.decoding.constraints import Processor

StepFn = Callable[[Any, jax.Array], tuple[jax.Array, Any]]
# choose_fn(logits [B, V] float32, step scalar int32) -> tokens [B] int32.
# `step` lets a sampler derive a fresh key per step with fold_in.
ChooseFn = Callable[[jax.Array, jax.Array], jax.Array]


def decode_loop(
    step_fn: StepFn,
    state: Any,
    choose_fn: ChooseFn,
    max_steps: int,
    max_len: jax.Array,
    bos: int = BOS,
    eos: int = EOS,
    process: Processor | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Extends each row by one chosen token per step until every row is done.

    One `lax.while_loop` over static shapes: the loop exits as soon as every
    row has emitted EOS or hit its limit, and no Python runs per token, so the
    whole search can sit inside `jax.jit`.

    Args:
      step_fn: the model step callback (see module docstring).
      state: pytree whose leaves all have leading axis B.
      choose_fn: picks the next token of every row from the raw logits.
      max_steps: static size of the output buffer; no row grows beyond it.
      max_len: [B] int32 per-row cap on generated tokens (EOS included).
      bos, eos: the start and end ids.
      process: the output constraints (`constraints.processor`), applied to the
        log-probabilities before the choice; None: the raw logits are chosen from.

    Returns:
      (tokens [B, max_steps] int32, lengths [B] int32, scores [B] float32),
      as described in the module docstring.
    """
    max_len = jnp.asarray(max_len, jnp.int32)
    b = max_len.shape[0]
    init = (
        jnp.zeros((), jnp.int32),                 # step i: index of the token being chosen
        jnp.full((b,), bos, jnp.int32),           # previous token fed to the model
        jnp.full((b, max_steps), PAD, jnp.int32),  # output buffer
        jnp.zeros((b,), jnp.int32),               # lengths
        jnp.zeros((b,), jnp.float32),             # summed log-probs
        max_len <= 0,                             # done: rows allowed no tokens at all
        state,
    )

    def cond(carry):
        i, _, _, _, _, done, _ = carry
        return (i < max_steps) & ~jnp.all(done)

    def body(carry):
        i, prev, tokens, lengths, scores, done, state = carry
        logits, state = step_fn(state, prev)
        log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)  # [B, V]
        if process is not None:  # choose from the constrained log-probs (the same softmax, masked)
            log_probs = process(log_probs, tokens, i)
            logits = log_probs
        token = choose_fn(logits, i).astype(jnp.int32)
        token = jnp.where(done, PAD, token)
        token_lp = jnp.take_along_axis(log_probs, token[:, None], axis=-1)[:, 0]
        scores = scores + jnp.where(done, 0.0, token_lp)
        lengths = lengths + (~done).astype(jnp.int32)
        tokens = tokens.at[:, i].set(token)
        done = done | (token == eos) | (lengths >= max_len)
        return i + 1, token, tokens, lengths, scores, done, state

    _, _, tokens, lengths, scores, _, _ = jax.lax.while_loop(cond, body, init)
    return tokens, lengths, scores
