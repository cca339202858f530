"""Repeated phrases in generated text: whether a low score comes from a decoder that loops.

A hypothesis "repeats" when some word n-gram (n = 3 by default) occurs in it twice or more. Real sentences
rarely do (1.9% of the ddtp_de_en test references), so the share of test hypotheses that repeat measures how
often a decoder says a phrase again, which BLEU and ROUGE punish without saying why. The report gives it per
architecture beside the references' own share: compare_translation_positions found a model with the better
teacher-forced loss but the worse BLEU, and this share is where the difference showed.
"""
from __future__ import annotations

import statistics
from pathlib import Path

from research.analysis.decide import read_test_hypotheses

N = 3  # word trigrams: bigrams repeat in real text ("of the ... of the"), 4-grams too rarely to count loops early


def repeats(text: str, n: int = N) -> bool:
    """Whether some n-gram of `text`'s whitespace-separated words occurs more than once."""
    words = text.split()
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return len(grams) != len(set(grams))


def share(lines: list[str], n: int = N) -> float:
    """The fraction of `lines` that repeat an n-gram (0.0 for no lines)."""
    return sum(repeats(line, n) for line in lines) / len(lines) if lines else 0.0


def by_architecture(root: Path, rows: list[dict], references) -> dict | None:
    """{"n", "references": share, "mean": {arch: share}, "std": {arch: share | None}} over the runs' test
    hypotheses (hyps_test.txt); None when a run has none. `references(run_dir)` -> that run's test references."""
    runs = [root / r["run"] for r in rows]
    if not rows or not all((run / "hyps_test.txt").exists() for run in runs):
        return None
    found: dict[str, list[float]] = {}
    for r, run in zip(rows, runs):
        found.setdefault(r["architecture"], []).append(share(read_test_hypotheses(run)))
    return {"n": N, "references": share(list(references(runs[0]))),
            "mean": {a: statistics.fmean(v) for a, v in found.items()},
            "std": {a: statistics.stdev(v) if len(v) > 1 else None for a, v in found.items()}}
