"""Reference decoding without a cache: every step reruns the decoder on the whole prefix.

The step callback keeps the tokens fed so far in a buffer [N, max_steps],
runs the full-sequence `Seq2Seq.decode` (the training code path) over it, and
returns the logits at the current position. Causality makes the rest of the
buffer irrelevant: nothing after position i can change the output at i.

It costs O(t) decoder work at step t instead of O(1), so it is only a
reference: tests check that the cached `decode_step` gives the same tokens
and scores, and benchmarks time the difference. Every leaf of its state is
row-leading, so greedy, beam search and sampling all run on it unchanged.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from research.data.batch import PAD
from research.decoding.config import DecodeConfig
from research.decoding.generate import encode, generate, generate_nbest, refuse_coverage_penalty
from research.decoding.loop import StepFn
from research.models.seq2seq import Seq2Seq


def step_callback(model: Seq2Seq, params) -> StepFn:
    """state = (encoder output, prefix [N, T] int32, index [N] int32)."""

    def step_fn(state, tokens):
        enc, prefix, index = state
        n, t = prefix.shape
        positions = jnp.broadcast_to(jnp.arange(t, dtype=jnp.int32), (n, t))
        prefix = jnp.where(positions == index[:, None], tokens[:, None], prefix)  # write the fed token
        # One segment over the whole buffer: the decoder sees an ordinary
        # unpadded target row, and causality hides the unwritten tail.
        batch = {"target_in": prefix, "target_segments": jnp.ones_like(prefix), "target_positions": positions}
        logits = model.apply({"params": params}, enc, batch, method=Seq2Seq.decode)  # [N, T, V]
        logits = jnp.take_along_axis(logits, index[:, None, None], axis=1)[:, 0]     # [N, V]
        return logits, (enc, prefix, index + 1)

    return step_fn


def prepare(model: Seq2Seq, params, batch: dict, cfg: DecodeConfig):
    """Like `generate.prepare`, with the prefix buffer in place of the decoder cache."""
    refuse_coverage_penalty(cfg, "the uncached reference search")
    enc, steps, max_len = encode(model, params, batch, cfg)
    b = max_len.shape[0]
    state = (enc, jnp.full((b, steps), PAD, jnp.int32), jnp.zeros((b,), jnp.int32))
    return step_callback(model, params), state, steps, max_len


def jit_generate_uncached(model: Seq2Seq, cfg: DecodeConfig):
    """As `generate.jit_generate`: `(params, batch) -> (tokens, lengths, scores)`, without a cache."""
    return jax.jit(functools.partial(generate, model=model, cfg=cfg, prepare=prepare))


def jit_generate_nbest_uncached(model: Seq2Seq, cfg: DecodeConfig):
    """As `generate.jit_generate_nbest`, without a cache."""
    return jax.jit(functools.partial(generate_nbest, model=model, cfg=cfg, prepare=prepare))
