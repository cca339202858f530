"""Output constraints every search applies to its log-probabilities: a minimum length and n-gram blocking.

Summaries need both (See et al. 2017 block repeated trigrams; Paulus et al.
2018 too): an untrained or copy-happy decoder repeats phrases and stops
early. They are written once as a *processor*

  process(log_probs [N, V], history [N, T], generated) -> log_probs [N, V]

that the searches call after the softmax, with the row's generated tokens so
far (`history`, BOS excluded, PAD after) and their count (`generated`, the
same for every live row: the step index). A forbidden token gets -inf; the
others keep the model's own log-probability. Nothing is renormalised, as in
fairseq and Hugging Face: a hypothesis scores what the model gave its tokens,
and the beam compares hypotheses by that, not by how much mass a constraint
took from each.

Beam search keeps one history per live hypothesis and reorders it with the
beams, so the constraints hold for every hypothesis, not only the best.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from research.data.batch import EOS

Processor = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def min_length(log_probs: jax.Array, generated: jax.Array, min_len: int, eos: int = EOS) -> jax.Array:
    """EOS is forbidden until `min_len` tokens (EOS not counted) exist, as fairseq's `--min-len`."""
    return jnp.where(generated < min_len, log_probs.at[:, eos].set(-jnp.inf), log_probs)


def banned_by_ngrams(history: jax.Array, generated: jax.Array, n: int, vocab: int) -> jax.Array:
    """[N, V] bool: the tokens that would complete an n-gram already in the row's history.

    The next token w makes the n-gram (history[g-n+1 : g], w), g = `generated`.
    Every earlier window history[j : j+n-1] equal to that suffix bans the token
    that followed it, history[j+n-1], provided that token exists (j+n-1 < g).
    All windows are compared at once over the static buffer: O(N T n) compares
    and one scatter per step, no loop over tokens.
    """
    rows, t = history.shape
    if n < 1 or t < n:
        return jnp.zeros((rows, vocab), bool)
    if n == 1:  # a unigram repeats as soon as the token was generated once
        seen = jnp.arange(t)[None, :] < generated
        return jnp.zeros((rows, vocab), bool).at[jnp.arange(rows)[:, None], history].max(seen)
    starts = jnp.arange(t - n + 1)                                             # window j
    # suffix[k] = history[g - n + 1 + k], k < n - 1 (clipped reads are masked out by `valid` below)
    suffix = jnp.take(history, jnp.clip(generated - n + 1 + jnp.arange(n - 1), 0, t - 1), axis=1)  # [N, n-1]
    windows = jnp.stack([jnp.take(history, starts + k, axis=1) for k in range(n - 1)], axis=-1)  # [N, J, n-1]
    match = jnp.all(windows == suffix[:, None, :], axis=-1)                   # [N, J]
    valid = (starts + n - 1 < generated) & (generated >= n - 1)                # the follower exists
    following = jnp.take(history, starts + n - 1, axis=1)                     # [N, J]
    return jnp.zeros((rows, vocab), bool).at[jnp.arange(rows)[:, None], following].max(match & valid[None, :])


def processor(min_len: int = 0, no_repeat_ngram: int = 0, eos: int = EOS) -> Processor | None:
    """The processor for `decode.min_len` and `decode.no_repeat_ngram`; None when both are off (0)."""
    if min_len <= 0 and no_repeat_ngram <= 0:
        return None

    def process(log_probs, history, generated):
        given = log_probs
        if no_repeat_ngram > 0:
            banned = banned_by_ngrams(history, generated, no_repeat_ngram, log_probs.shape[-1])
            log_probs = jnp.where(banned, -jnp.inf, log_probs)
        if min_len > 0:
            log_probs = min_length(log_probs, generated, min_len, eos)
        # A row with every token forbidden (a tiny symbol vocabulary, n = 1) may still end: EOS stays open.
        stuck = jnp.all(jnp.isneginf(log_probs), axis=-1, keepdims=True)
        return jnp.where(stuck & (jnp.arange(log_probs.shape[-1]) == eos), given, log_probs)

    return process
