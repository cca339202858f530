"""Validation during training: loss and perplexity, then decoding and the task metric."""
from __future__ import annotations

import math

import jax

from research.decoding import metrics as task_metrics
from research.decoding.corpus import decode_batches


def task_metric_name(task: str) -> str:
    """The metric that picks the best checkpoint."""
    return "bleu" if task == "translation" else "rougeL"


def loss_metrics(eval_fn, params, batches) -> dict:
    """Loss, perplexity and token accuracy over every batch of a split."""
    totals = {"loss": 0.0, "nll": 0.0, "correct": 0.0, "tokens": 0.0}
    for batch in batches:
        sums = jax.device_get(eval_fn(params, batch))
        for k in totals:
            totals[k] += float(sums[k])
    n = max(totals["tokens"], 1.0)
    return {"loss": totals["loss"] / n, "perplexity": math.exp(min(totals["nll"] / n, 50.0)), "accuracy": totals["correct"] / n}


def decode_all(generate_fn, params, batches, n: int, tokenizer) -> list[str]:
    """The best hypothesis of every example, in corpus order (`generate_fn`: jit_generate_nbest)."""
    return [outputs[0].text for outputs in decode_batches(generate_fn, params, batches, n, tokenizer)]


def score(task: str, hyps: list[str], refs: list[str]) -> dict:
    if task == "translation":
        out = task_metrics.bleu(hyps, refs)
        return {"bleu": out["bleu"], "chrf": out["chrf"]}
    out = task_metrics.rouge(hyps, refs)
    return {k: out[k] for k in ("rouge1", "rouge2", "rougeL", "rougeLsum")}
