"""Binds a Seq2Seq model to the searches and picks the search from the config.

A search sees the model only through the step callback
`step_fn(state, tokens [N]) -> (logits [N, V], state)` (see `loop.py`). Here
that callback runs one incremental decoder step against the decoder's cache;
`uncached.py` supplies a reference callback that recomputes the whole prefix.
Both plug into the same `generate` through a `prepare` function:

  prepare(model, params, batch, cfg) -> (step_fn, state, max_steps, max_len [B])

`cfg.search` chooses the search:
  greedy   the most likely token at each step
  beam     beam search with the GNMT length penalty, n_best outputs, and
           optionally a coverage penalty (research/decoding/coverage_penalty.py):
           then the model is the same one with `track_coverage`, whose cache
           carries the summed attention the penalty reads
  sample   ancestral sampling (temperature, top-k, top-p)
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from research.decoding.beam import beam_search
from research.decoding.constraints import processor
from research.decoding.config import DecodeConfig
from research.decoding.coverage_penalty import PENALTIES
from research.decoding.greedy import greedy
from research.decoding.loop import StepFn
from research.decoding.sample import sample
from research.models.layers.positions import learned_max_len
from research.models.seq2seq import Seq2Seq
from research.registry import ConfigError


class Hypotheses(NamedTuple):
    """The n-best output of a search; N = cfg.n_best for beam search, else 1.

    tokens    [B, N, L] int32: BOS excluded, the final EOS included, PAD after.
    lengths   [B, N] int32: generated tokens, counting the EOS.
    scores    [B, N] float32: what the search ranks by, best first: the
              length-normalised score for beam search, else = log_probs.
    log_probs [B, N] float32: summed log-probabilities of the tokens.
    """

    tokens: jax.Array
    lengths: jax.Array
    scores: jax.Array
    log_probs: jax.Array


Prepare = Callable[[Seq2Seq, Any, dict, DecodeConfig], tuple[StepFn, Any, int, jax.Array]]


def max_steps(cfg: DecodeConfig, source_len: int) -> int:
    """Static output buffer for a padded source length S: ceil(a * S + b)."""
    return max(1, math.ceil(cfg.max_len_a * source_len + cfg.max_len_b))


def encode(model: Seq2Seq, params, batch: dict, cfg: DecodeConfig):
    """Encodes the batch; returns (encoder output, max_steps, per-row max_len [B] int32).

    A row may generate up to ceil(a * its source length + b) tokens, EOS
    included; the static buffer is sized for the padded source length. A
    decoder with learned positions generates at most as many tokens as its
    table has rows (`decoder.max_len`): past it, every position would read
    the last row.
    """
    enc = model.apply({"params": params}, batch, method=Seq2Seq.encode)
    steps = max_steps(cfg, batch["source"].shape[1])
    src_len = (batch["source_segments"] > 0).sum(1)
    max_len = jnp.ceil(cfg.max_len_a * src_len + cfg.max_len_b).astype(jnp.int32)
    table = learned_max_len(params, "decoder")  # from the parameters' shapes: static under jit
    if table is not None:
        steps, max_len = min(steps, table), jnp.minimum(max_len, table)
    return enc, steps, max_len


def step_callback(model: Seq2Seq, params) -> StepFn:
    """Incremental decoding: state = (encoder output, decoder cache); one token per call."""

    def step_fn(state, tokens):
        enc, cache = state
        logits, cache = model.apply({"params": params}, enc, cache, tokens, method=Seq2Seq.decode_step)
        return logits, (enc, cache)

    return step_fn


def prepare(model: Seq2Seq, params, batch: dict, cfg: DecodeConfig):
    """The cached step callback and its initial state (see module docstring)."""
    if cfg.coverage_penalty != "none":
        model = model.clone(track_coverage=True)  # the same parameters; the cache also sums the attention
    enc, steps, max_len = encode(model, params, batch, cfg)
    cache = model.apply({"params": params}, enc, steps, method=Seq2Seq.init_cache)
    return step_callback(model, params), (enc, cache), steps, max_len


def row_keys(seed: int, source: jax.Array) -> jax.Array:
    """[B] sampling keys: fold_in(key(seed), a hash of each source row).

    The hash ignores padding, so a sentence gets the same key whatever its
    batch, row or padded length: `translate` and `evaluate` sample the same
    output for it.
    """
    s = source.astype(jnp.uint32)                                          # [B, S]
    powers = jnp.cumprod(jnp.full(s.shape[1:], 0x9E3779B1, jnp.uint32))    # wraps mod 2**32
    h = jnp.sum(s * powers, axis=1, dtype=jnp.uint32)                      # [B]
    return jax.vmap(jax.random.fold_in, in_axes=(None, 0))(jax.random.key(seed), h)


def search(step_fn: StepFn, state: Any, steps: int, max_len: jax.Array, cfg: DecodeConfig,
           keys: jax.Array | None = None) -> Hypotheses:
    """Runs the search the config asks for (see module docstring).

    Args:
      step_fn, state: the step callback and its initial state (rows leading).
      steps: static output buffer length.
      max_len: [B] int32 per-row cap on generated tokens.
      cfg: the decode config; read at trace time.
      keys: sampling keys (one, or [B]); required when cfg.search is "sample".
    """
    process = processor(cfg.min_len, cfg.no_repeat_ngram)  # decode.min_len, decode.no_repeat_ngram
    if cfg.search == "beam":
        tokens, lengths, scores, log_probs = beam_search(
            step_fn, state, cfg.beam_size, steps, max_len, cfg.length_penalty, cfg.n_best, process=process,
            penalty=coverage_penalty(cfg))
        return Hypotheses(tokens, lengths, scores, log_probs)
    if cfg.search == "sample":
        if keys is None:
            raise ValueError("sampling needs keys")
        tokens, lengths, log_probs = sample(step_fn, state, keys, steps, max_len,
                                            cfg.temperature, cfg.top_k, cfg.top_p, process=process)
    elif cfg.search == "greedy":
        tokens, lengths, log_probs = greedy(step_fn, state, steps, max_len, process=process)
    else:
        raise ValueError(f"decode.search: no search named {cfg.search!r}")
    return Hypotheses(tokens[:, None], lengths[:, None], log_probs[:, None], log_probs[:, None])


def coverage_penalty(cfg: DecodeConfig):
    """`penalty(state) -> [N]` for beam search from the cached state (encoder output, {"coverage": ...}) that
    `prepare` makes with decode.coverage_penalty set; None without one."""
    if cfg.coverage_penalty == "none":
        return None
    form, beta = PENALTIES[cfg.coverage_penalty], cfg.coverage_beta
    return lambda state: form(state[1]["coverage"], state[0].mask, beta)


def refuse_coverage_penalty(cfg: DecodeConfig, where: str) -> None:
    """A ConfigError for a search state that does not carry the cached model's coverage (`where` says whose)."""
    if cfg.coverage_penalty != "none":
        raise ConfigError(f"decode.coverage_penalty: {cfg.coverage_penalty}: {where} does not track the attention's "
                         "coverage; the penalty needs the cached decoding of one model (set decode.coverage_penalty=none)")


def generate_nbest(params, batch: dict, *, model: Seq2Seq, cfg: DecodeConfig, prepare: Prepare = prepare) -> Hypotheses:
    """Decodes a batch; -> Hypotheses with N = cfg.n_best (beam search) or 1."""
    step_fn, state, steps, max_len = prepare(model, params, batch, cfg)
    keys = row_keys(cfg.seed, batch["source"]) if cfg.search == "sample" else None
    return search(step_fn, state, steps, max_len, cfg, keys)


def generate(params, batch: dict, *, model: Seq2Seq, cfg: DecodeConfig, prepare: Prepare = prepare):
    """-> (tokens [B, L], lengths [B], scores [B]) of the best hypothesis per row.

    Scores as in `Hypotheses.scores`. Beam search keeps only one finished
    hypothesis here: the best is the same as with a larger n_best.
    """
    h = generate_nbest(params, batch, model=model, cfg=dataclasses.replace(cfg, n_best=1), prepare=prepare)
    return h.tokens[:, 0], h.lengths[:, 0], h.scores[:, 0]


def jit_generate(model: Seq2Seq, cfg: DecodeConfig):
    """jitted `(params, batch) -> (tokens [B, L], lengths [B], scores [B])`, cached decoding."""
    return jax.jit(functools.partial(generate, model=model, cfg=cfg))


def jit_generate_nbest(model: Seq2Seq, cfg: DecodeConfig):
    """jitted `(params, batch) -> Hypotheses`, cached decoding."""
    return jax.jit(functools.partial(generate_nbest, model=model, cfg=cfg))
