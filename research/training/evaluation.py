"""Scoring one split: the loss over every example, then decoding and the task metric.

The one path: validation during training and `research.evaluate` both call
`evaluate_split`, so a validation BLEU and an evaluated BLEU of the same
checkpoint and examples are the same number.

Nothing is truncated: every source is decoded whole and the loss covers
every target whole (the data pipeline adds batch shapes for long examples),
so scores compare with other toolkits'. The one exception is a model with
learned positions (`encoder/decoder.max_len`): a longer side is cut to its
table, with a warning, and `truncated_to_model` counts such examples.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import jax

from research.data import corpus
from research import tasks
from research.decoding.corpus import Output, decode_batches, one_line
from research.models.layers.positions import learned_max_len

log = logging.getLogger(__name__)


def task_metric_name(task: str) -> str:
    """The metric that picks the best checkpoint: the task's (research/tasks/)."""
    return tasks.get(task).metric


def selection(task: str, select_by: str) -> tuple[str, str]:
    """(validation key, "max" or "min") that `trainer.select_by` picks the best checkpoint by: the task's
    metric in its better direction (`Task.lower_is_better`), or the loss, lowest."""
    if select_by != "metric":
        return "loss", "min"
    t = tasks.get(task)
    return t.metric, "min" if t.lower_is_better else "max"


def token_metrics(totals: dict) -> dict:
    """Loss, perplexity (exp of the mean token NLL, capped at exp(50)) and token accuracy from summed
    "loss", "nll", "correct" and "tokens" (what `steps.eval_step` returns per batch)."""
    n = max(totals["tokens"], 1.0)
    return {"loss": totals["loss"] / n, "perplexity": math.exp(min(totals["nll"] / n, 50.0)), "accuracy": totals["correct"] / n}


def loss_metrics(eval_fn, params, batches) -> dict:
    """Loss, perplexity and token accuracy over every batch of a split."""
    totals = {"loss": 0.0, "nll": 0.0, "correct": 0.0, "tokens": 0.0}
    for batch in batches:
        sums = jax.device_get(eval_fn(params, batch))
        for k in totals:
            totals[k] += float(sums[k])
    return token_metrics(totals)


def numbers(results: dict) -> dict[str, float]:
    """The numeric entries of a results dict (what metrics.jsonl and TensorBoard take)."""
    return {k: float(v) for k, v in results.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


@dataclasses.dataclass(frozen=True)
class SplitScores:
    metrics: dict  # loss, perplexity, accuracy (every example); task scores and signatures (the decoded ones)
    outputs: list[list[Output]]  # n-best per decoded example, corpus order
    hyps: list[str]  # the best hypothesis of each decoded example, as one line
    refs: list[str]
    sources: list[str]


def model_limits(params) -> tuple[int | None, int | None]:
    """(S, T): the longest source and target the model behind `params` can represent; None: no limit.

    Read from the learned position tables in `params` (any pytree holding
    them, e.g. an ensemble's; the smallest table wins), since they are the
    model evaluated, whatever built it. Sinusoidal positions, RNNs: (None, None).
    """
    return learned_max_len(params, "encoder"), learned_max_len(params, "decoder")


def evaluate_split(examples: Any, tokenizer, data_cfg, params, eval_fn, generate_fn, *, decode_examples: int = 0,
                   shapes=None, description: str = "decoding") -> SplitScores:
    """Scores `params` on `examples` (random access to {"source", "target"}), every example whole.

    Args:
      eval_fn: jitted `steps.eval_step` bound to the model; `generate_fn`: `jit_generate_nbest`.
      decode_examples: decode only the first N examples for the task metric (0: all);
        the loss always covers every example.
      shapes: batch shapes to reuse (the training iterator's, so no new compiles); None chooses them.
        Examples longer than all of them get a few added shapes, never a cut.
      description: what the decoding progress display says.

    Returns:
      SplitScores; `metrics["truncated_to_model"]` counts the examples (of all) cut to
      `model_limits(params)`, the one truncation there is (logged as a warning).
    """
    limits = model_limits(params)
    batches = corpus.eval_batches(examples, tokenizer, data_cfg, shapes, limits)
    losses = loss_metrics(eval_fn, params, batches)
    n = min(decode_examples or len(examples), len(examples))
    subset = corpus.Head(examples, n)
    outputs = decode_batches(generate_fn, params, corpus.eval_batches(subset, tokenizer, data_cfg, shapes, limits), n,
                             tokenizer, description)
    hyps = [one_line(o[0].text) for o in outputs]
    rows = [subset[i] for i in range(n)]
    refs = [r["target"] for r in rows]
    cut = batches.stats.truncated
    if cut:
        log.warning("%d of %d examples are longer than the model's learned positions (source %s, target %s, "
                    "EOS/BOS included) and were cut to them; the results count them as truncated_to_model",
                    cut, len(examples), *limits)
    task = tasks.get(data_cfg.task)
    sources = [r["source"] for r in rows]
    metrics = {**losses, "truncated_to_model": cut, **task.score(hyps, refs, data_cfg),
               **task.split_extras(tokenizer, sources, refs)}
    return SplitScores(metrics, outputs, hyps, refs, sources)
