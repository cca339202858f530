"""Validation during training: loss and perplexity, then decoding and the task metric."""
from __future__ import annotations

import math

import jax
import numpy as np

from research.decoding import metrics as task_metrics


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
    """Hypothesis strings in corpus order; `batch["index"]` says which example a row holds."""
    hyps: list[str | None] = [None] * n
    for batch in batches:
        tokens, lengths, _ = jax.device_get(generate_fn(params, batch))
        for row, i in enumerate(batch["index"]):
            if i >= 0:
                hyps[i] = tokenizer.decode_target(np.asarray(tokens[row][: lengths[row]]))
    missing = [i for i, h in enumerate(hyps) if h is None]
    if missing:
        raise RuntimeError(f"evaluation batches skipped {len(missing)} examples, e.g. {missing[:5]}")
    return hyps


def score(task: str, hyps: list[str], refs: list[str]) -> dict:
    if task == "translation":
        out = task_metrics.bleu(hyps, refs)
        return {"bleu": out["bleu"], "chrf": out["chrf"]}
    out = task_metrics.rouge(hyps, refs)
    return {k: out[k] for k in ("rouge1", "rouge2", "rougeL", "rougeLsum")}
