"""Binds a Seq2Seq model to the search functions through the narrow step callback."""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from research.decoding.config import DecodeConfig
from research.decoding.greedy import greedy
from research.models.seq2seq import Seq2Seq


def max_steps(cfg: DecodeConfig, source_len: int) -> int:
    """Static output buffer for a padded source length S: ceil(a * S + b)."""
    return max(1, math.ceil(cfg.max_len_a * source_len + cfg.max_len_b))


def step_callback(model: Seq2Seq, params):
    """state = (encoder output, decoder cache); every leaf is batch-leading."""

    def step_fn(state, tokens):
        enc, cache = state
        logits, cache = model.apply({"params": params}, enc, cache, tokens, method=Seq2Seq.decode_step)
        return logits, (enc, cache)

    return step_fn


def start(model: Seq2Seq, params, batch: dict, cfg: DecodeConfig):
    """Encodes the batch; returns (state, max_steps, per-row max_len [B])."""
    enc = model.apply({"params": params}, batch, method=Seq2Seq.encode)
    steps = max_steps(cfg, batch["source"].shape[1])
    src_len = (batch["source_segments"] > 0).sum(1)
    max_len = jnp.ceil(cfg.max_len_a * src_len + cfg.max_len_b).astype(jnp.int32)
    cache = model.apply({"params": params}, enc, steps, method=Seq2Seq.init_cache)
    return (enc, cache), steps, max_len


def generate(params, batch: dict, *, model: Seq2Seq, cfg: DecodeConfig):
    """-> (tokens [B, L], lengths [B], scores [B]) of the best hypothesis per row."""
    state, steps, max_len = start(model, params, batch, cfg)
    return greedy(step_callback(model, params), state, steps, max_len)


def jit_generate(model: Seq2Seq, cfg: DecodeConfig):
    return jax.jit(functools.partial(generate, model=model, cfg=cfg))
