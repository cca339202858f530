"""Validation during training: loss and perplexity, then decoding and the task metric."""
from __future__ import annotations

import math

import jax
import numpy as np

from research.data.batching import eval_batches
from research.decoding import metrics as task_metrics


def task_metric_name(task: str) -> str:
    """The metric that picks the best checkpoint."""
    return "bleu" if task == "translation" else "rougeL"


def loss_metrics(eval_fn, params, examples, data_cfg, batch_size: int) -> dict:
    totals = {"loss": 0.0, "nll": 0.0, "correct": 0.0, "tokens": 0.0}
    for _, batch in eval_batches(examples, data_cfg, batch_size):
        sums = jax.device_get(eval_fn(params, batch))
        for k in totals:
            totals[k] += float(sums[k])
    n = max(totals["tokens"], 1.0)
    return {"loss": totals["loss"] / n, "perplexity": math.exp(min(totals["nll"] / n, 50.0)), "accuracy": totals["correct"] / n}


def decode_all(generate_fn, params, examples, data_cfg, batch_size: int, tokenizer) -> list[str]:
    """Hypothesis strings in the order of `examples`."""
    hyps: list[str] = [""] * len(examples)
    for idx, batch in eval_batches(examples, data_cfg, batch_size):
        tokens, lengths, _ = jax.device_get(generate_fn(params, batch))
        for row, i in enumerate(idx):
            hyps[i] = tokenizer.decode_target(np.asarray(tokens[row][: lengths[row]]))
    return hyps


def score(task: str, hyps: list[str], refs: list[str]) -> dict:
    if task == "translation":
        out = task_metrics.bleu(hyps, refs)
        return {"bleu": out["bleu"], "chrf": out["chrf"]}
    out = task_metrics.rouge(hyps, refs)
    return {k: out[k] for k in ("rouge1", "rouge2", "rougeL", "rougeLsum")}
