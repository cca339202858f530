"""Decoding with several models at once: their next-token distributions combined at every step.

An ensemble is just another `prepare` for `generate.generate_nbest`: its
state is the tuple of the members' states (each member's encoder output and
its own decoder cache, whatever its decoder kind), and its step callback runs
every member's step on the same tokens and returns the combined
log-probabilities. Searches only ever tile and gather state leaves along the
rows (`beam.tile_beams`, `beam.reorder` are tree maps), so greedy search,
beam search and sampling all run on the tuple unchanged, inside one jitted
function.

Two ways to combine n members' log-probabilities log p_i [N, V]:
  prob     log(mean_i p_i) = logsumexp_i(log p_i) - log n: the average of the
           probabilities (fairseq's `EnsembleModel`); the default, because
           it is a proper mixture: a member that gives a token almost no
           probability cannot veto it.
  logprob  log_softmax(mean_i log p_i): the normalised geometric mean
           (OpenNMT-py averages log-probabilities). OpenNMT-py leaves the
           mean unnormalised; it is renormalised here so that scores and the
           loss are log-probabilities of one distribution. (The searches
           apply log_softmax to what a step returns anyway, so the tokens
           chosen would be the same either way.)

The members must share one tokenizer (`check_tokenizers`): the same ids must
mean the same pieces. Their loss (`eval_step`) is that of the combined
distribution, by teacher forcing through each member's full-sequence call.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp

from research.decoding import generate
from research.decoding.config import DecodeConfig
from research.decoding.loop import StepFn
from research.models.seq2seq import Seq2Seq
from research.registry import ConfigError
from research.training.losses import token_sums

RULES = ("prob", "logprob")


def check_rule(rule: str) -> None:
    """Refuses a combination rule other than RULES, naming the option."""
    if rule not in RULES:
        raise ConfigError(f"ensemble: '{rule}' is not one of {', '.join(RULES)}")


def combine(log_probs: Sequence[jax.Array], rule: str = "prob") -> jax.Array:
    """The members' log-probabilities [..., V] each -> the ensemble's [..., V] (see module docstring).

    A running reduction rather than a stack: no [n, B, T, V] array is asked
    for, which the evaluation loss would otherwise build.
    """
    check_rule(rule)
    if rule == "prob":
        return functools.reduce(jnp.logaddexp, log_probs) - math.log(len(log_probs))
    return jax.nn.log_softmax(functools.reduce(jnp.add, log_probs) / len(log_probs), axis=-1)


@dataclasses.dataclass(frozen=True)
class Ensemble:
    """The members' models and how their distributions are combined; params are a tuple in the same order."""

    models: tuple[Seq2Seq, ...]
    rule: str = "prob"

    def __post_init__(self):
        if not self.models:
            raise ValueError("an ensemble needs at least one model")
        check_rule(self.rule)


def step_callback(step_fns: Sequence[StepFn], rule: str) -> StepFn:
    """state = tuple of the members' states; returns the combined log-probs [N, V] as the logits."""

    def step_fn(state, tokens):
        outs = [f(s, tokens) for f, s in zip(step_fns, state)]
        log_probs = [jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1) for logits, _ in outs]  # n x [N, V]
        return combine(log_probs, rule), tuple(s for _, s in outs)

    return step_fn


def prepare(ensemble: Ensemble, params: Sequence[Any], batch: dict, cfg: DecodeConfig):
    """`generate.Prepare` for an ensemble: every member encodes the batch and sets up its own state."""
    if len(params) != len(ensemble.models):
        raise ValueError(f"{len(ensemble.models)} models but {len(params)} parameter sets")
    generate.refuse_coverage_penalty(cfg, "an ensemble")
    members = [generate.prepare(m, p, batch, cfg) for m, p in zip(ensemble.models, params)]
    # The buffer length and row limits follow the batch and cfg, capped by a learned decoder position
    # table (generate.encode): the ensemble stops where its most limited member must.
    steps = min(m[2] for m in members)
    max_len = functools.reduce(jnp.minimum, [m[3] for m in members])
    state = tuple(s for _, s, _, _ in members)
    return step_callback([f for f, _, _, _ in members], ensemble.rule), state, steps, max_len


def jit_generate_nbest(ensemble: Ensemble, cfg: DecodeConfig):
    """jitted `(params tuple, batch) -> generate.Hypotheses`, as `generate.jit_generate_nbest`."""
    return jax.jit(functools.partial(generate.generate_nbest, model=ensemble, cfg=cfg, prepare=prepare))


def eval_step(params: Sequence[Any], batch: dict, *, ensemble: Ensemble) -> dict:
    """Token sums (as `steps.eval_step`) of the combined distribution, each member teacher-forced.

    Costs one full-sequence forward pass per member, the same as evaluating
    each alone, so the ensemble's loss and perplexity come at no extra price.
    """
    log_probs = [jax.nn.log_softmax(m.apply({"params": p}, batch, deterministic=True), axis=-1)
                 for m, p in zip(ensemble.models, params)]  # n x [B, T, V]
    return token_sums(combine(log_probs, ensemble.rule), batch)


def jit_eval_step(ensemble: Ensemble):
    """jitted `(params tuple, batch) -> sums`, what `evaluation.evaluate_split` takes as eval_fn."""
    return jax.jit(functools.partial(eval_step, ensemble=ensemble))


def tokenizer_differences(tok, other) -> list[str]:
    """What tells two tokenizers apart, as phrases; [] when they are the same."""
    diffs = []
    if len(tok.paths) != len(other.paths):
        kind = lambda t: "a joint model" if len(t.paths) == 1 else "source and target models"
        diffs.append(f"{kind(other)} vs {kind(tok)}")
    for side in ("source", "target"):
        a, b = getattr(tok, f"{side}_vocab"), getattr(other, f"{side}_vocab")
        if a != b:
            diffs.append(f"{side} vocabulary {b} vs {a} pieces")
    if tok.fingerprint() != other.fingerprint():
        diffs.append(f"fingerprint {other.fingerprint()} vs {tok.fingerprint()}")
    return diffs


def check_tokenizers(named: Sequence[tuple[str, Any]]) -> None:
    """Refuses members whose tokenizer differs from the first one's, naming the member and the difference.

    Args:
      named: (name, Tokenizer) per member, e.g. (run directory, its tokenizer).
    """
    (first, tok), *rest = named
    for name, other in rest:
        if diffs := tokenizer_differences(tok, other):
            raise ConfigError(f"run_dir={name}: its tokenizer differs from that of {first} ({'; '.join(diffs)}); "
                              f"an ensemble needs one tokenizer, so that a token id means the same piece to every member")
