"""Coverage penalties for beam search: prefer hypotheses whose attention covered the source.

A finished hypothesis's coverage is c_i = sum_t a_t,i, the attention its
decoder paid to source position i over all its steps (the model's cache
carries it with `Seq2Seq.track_coverage`). Two forms, both a penalty p >= 0
that beam search subtracts from the length-normalised score of a hypothesis
when it finishes (`beam.beam_search`):

  wu       GNMT's (Wu et al. 2016, eq. 14): p = -beta * sum_i log(min(c_i, 1)).
           Positions attended less than once in total cost; attending more
           earns nothing. Translation: cover every source word.
  summary  OpenNMT-py's `coverage_summary`: p = beta * sum_i max(c_i - 1, 0)
           (written there as sum_i max(c_i, 1) - S). Positions attended more
           than once in total cost; a summary leaves most of the source
           uncovered and should not repeat what it took.

Only the real source positions count: pads have no attention (c = 0) and
would make the GNMT log -inf. A real position the softmax gave exactly 0
(underflow) is floored at 1e-10 for the same reason, which caps its cost at
beta * 23.

Where: at finishing only, as GNMT (its penalties re-rank finished
hypotheses) and OpenNMT-py by default (no stepwise penalty): the live beams
are still ranked by their log-probability, and beam search's stopping bound
stays exact, since p >= 0 can only lower a final score.
"""
from __future__ import annotations

import jax.numpy as jnp

FLOOR = 1e-10  # the smallest coverage the GNMT log sees (see the module docstring)


def wu(coverage, mask, beta: float):
    """coverage, mask [..., S] -> the GNMT penalty [...] (module docstring)."""
    covered = jnp.where(mask, jnp.maximum(jnp.minimum(coverage, 1.0), FLOOR), 1.0)
    return -beta * jnp.log(covered).sum(-1)


def summary(coverage, mask, beta: float):
    """coverage, mask [..., S] -> OpenNMT-py's summary penalty [...] (module docstring)."""
    return beta * jnp.where(mask, jnp.maximum(coverage - 1.0, 0.0), 0.0).sum(-1)


PENALTIES = {"wu": wu, "summary": summary}  # decode.coverage_penalty (research/decoding/config.py)
