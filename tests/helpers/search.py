"""Toy step models and exhaustive references for the search tests (tests/decoding/)."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np

from research.data.batch import BOS, EOS
from research.decoding.beam import length_penalty


def toy_model(seed: int, batch: int, vocab: int, banned=()):
    """Random bigram table + per-row bias + a step counter that favours EOS later.

    `banned` ids get a -1e9 logit, as a trained model would give PAD and BOS;
    that keeps the brute-force search space small.
    """
    k_table, k_bias = jax.random.split(jax.random.key(seed))
    table = 1.5 * jax.random.normal(k_table, (vocab, vocab))
    table = table.at[:, list(banned)].set(-1e9)
    state = {"bias": jax.random.normal(k_bias, (batch, vocab)), "t": jnp.zeros((batch,), jnp.int32)}
    is_eos = (jnp.arange(vocab) == EOS).astype(jnp.float32)

    def step_fn(state, tokens):
        logits = table[tokens] + state["bias"] + 0.5 * state["t"][:, None] * is_eos
        return logits, {"bias": state["bias"], "t": state["t"] + 1}

    return step_fn, state


def teacher_forced_log_probs(step_fn, state, tokens):
    """[B, T] log-prob of each given token, feeding BOS then the tokens themselves."""
    prev = jnp.full(tokens.shape[:1], BOS, jnp.int32)
    out = []
    for t in range(tokens.shape[1]):
        logits, state = step_fn(state, prev)
        prev = jnp.asarray(tokens[:, t], jnp.int32)
        out.append(jnp.take_along_axis(jax.nn.log_softmax(logits), prev[:, None], axis=1)[:, 0])
    return np.asarray(jnp.stack(out, axis=1))


def brute_force(step_fn, state, row, vocab, max_len, alpha, penalty=None):
    """Every hypothesis of one row (ends in EOS, or reaches max_len), best first.

    Scores all vocab**max_len token strings in one batched teacher-forced pass;
    a hypothesis is a string cut after its first EOS, so prefixes repeat and
    are deduplicated. `penalty(hypothesis tuple) -> float`, when given, is
    subtracted from the length-normalised score.
    """
    strings = np.array(list(itertools.product(range(vocab), repeat=max_len)), np.int32)
    row_state = jax.tree.map(lambda x: jnp.repeat(x[row : row + 1], len(strings), axis=0), state)
    cumulative = np.cumsum(teacher_forced_log_probs(step_fn, row_state, strings), axis=1)
    hyps = {}
    for s, cum in zip(strings, cumulative):
        eos = np.flatnonzero(s == EOS)
        n = eos[0] + 1 if len(eos) else max_len
        hyps[tuple(s[:n])] = cum[n - 1]
    cost = penalty or (lambda h: 0.0)
    scored = [(lp / float(length_penalty(len(h), alpha)) - cost(h), lp, h) for h, lp in hyps.items()]
    return sorted(scored, key=lambda x: -x[0])
