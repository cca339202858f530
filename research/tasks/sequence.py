"""Sequence tasks (copy, reverse, SCAN, ...): exact-match accuracy decides, also by target length.

Their outputs are symbol sequences (`tokenizer=symbols`): a hypothesis is right
only when every symbol is, so exact match is the score; token accuracy and
accuracy per `data.length_bucket` target lengths say where it goes wrong.
An evaluated split also counts the symbols the vocabulary lacks, and a run's
summary records its longest training target, which the report marks on the
accuracy-by-length plot.
"""
from __future__ import annotations

from research.analysis import significance
from research.decoding import metrics
from research.tasks import Task, register


def unknown_symbols(tokenizer, sources: list[str], refs: list[str]) -> dict:
    """Symbols of the split outside the vocabulary: scored as <unk>, so counted."""
    return {"unknown_symbols": tokenizer.unknown(sources) + tokenizer.unknown(refs, "target")}


def longest_training_target(pairs) -> dict:
    return {"train_target_len_max": max(len(t.split()) for _, t in pairs())}


TASK = register(Task(
    name="sequence", metric="sequence_accuracy",
    score=lambda hyps, refs, data: metrics.sequence(hyps, refs, data.length_bucket),
    paired_test=significance.sequence,
    test_description="a paired bootstrap over per-example exact match (1,000 resamples, seed 12345).",
    split_extras=unknown_symbols,
    summary_extras=longest_training_target,
))
