"""Input pipeline throughput on ddtp_de_en, against the train step it must feed.

The pipeline has to stay well ahead of training: the target is at least 20x
the target tokens per second that the transformer train step consumes at the
benchmark shape, measured in the same run, with under 15% padding.
"""
from __future__ import annotations

import dataclasses
import logging
import time

from research.benchmarks import models
from research.benchmarks.train import time_pair
from research.data import corpus

log = logging.getLogger(__name__)

MIN_RATIO, MAX_PADDING = 20.0, 0.15


def pipeline_section(train_tokens_per_s: float | None = None, batches: int = 300, repeats: int = 3) -> dict:
    """Times `batches` batches of the real ddtp_de_en training stream.

    Args:
      train_tokens_per_s: the transformer-transformer step's target tokens/s
        from this run's train section; measured here when absent.
    """
    run = models.run_config("transformer", "transformer", extra=["data=ddtp_de_en"])
    d = dataclasses.replace(run.data, tokens_per_batch=models.BENCH_SHAPE.batch * models.BENCH_SHAPE.tgt_len)
    splits = corpus.load(d, (d.train_split,))
    train = corpus.pairs(splits[d.train_split])
    tok = corpus.tokenizer(run.tokenizer, train, corpus.fingerprint(train))
    it = corpus.train_batches(splits[d.train_split], tok, d, seed=0)
    next(it)  # start-up (length pass, worker start) is not throughput
    it.stats.batches = it.stats.real_tokens = it.stats.positions = 0
    it.stats.seconds = 0.0
    target_tokens, tick = 0, time.perf_counter()
    for _ in range(batches):
        b = next(it)
        target_tokens += int((b["target_segments"] > 0).sum())
    wall = time.perf_counter() - tick
    stats = it.stats
    it.close()
    if train_tokens_per_s is None:
        train_tokens_per_s = time_pair("transformer-transformer", repeats=repeats)["tokens_per_s"]
    out = {
        "dataset": d.name, "batches": batches, "tokens_per_batch": d.tokens_per_batch, "max_shapes": d.max_shapes,
        "shapes": " ".join(f"{b}x{s}x{t}" for b, s, t in stats.shapes),
        "tokens_per_s": target_tokens / wall,  # target tokens, as the train step counts them
        "all_tokens_per_s": stats.real_tokens / wall,  # source and target
        "padding_fraction": stats.padding_fraction,
        "train_step_tokens_per_s": train_tokens_per_s,
    }
    out["tokens_per_s_vs_train_step"] = out["tokens_per_s"] / train_tokens_per_s
    log.info("pipeline: %.0f target tokens/s (%.0fx the train step), padding %.1f%%", out["tokens_per_s"],
             out["tokens_per_s_vs_train_step"], 100 * out["padding_fraction"])
    return out


def targets(section: dict) -> dict:
    """The pipeline's two targets, in the format of the benchmark's `targets` table."""
    ratio, padding = section["tokens_per_s_vs_train_step"], section["padding_fraction"]
    return {
        "pipeline >= 20x the transformer train step": {
            "metric": "tokens_per_s_vs_train_step", "min": MIN_RATIO, "value": ratio, "met": ratio >= MIN_RATIO},
        "pipeline padding < 15%": {
            "metric": "padding_fraction", "max": MAX_PADDING, "value": padding, "met": padding < MAX_PADDING},
    }
