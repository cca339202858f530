"""Repeated phrases in generated text: whether a low score comes from a decoder that loops.

A hypothesis "repeats" when some word n-gram (n = 3 by default) occurs in it twice or more. Real sentences
rarely do (1.9% of the ddtp_de_en test references), so the share of test hypotheses that repeat measures how
often a decoder says a phrase again, which BLEU and ROUGE punish without saying why. The report gives it per
architecture beside the references' own share: compare_translation_positions found a model with the better
teacher-forced loss but the worse BLEU, and this share is where the difference showed (though at a better
learning rate, compare_translation_positions_lr, the same model loops as often and wins: a high share
names a behaviour, not by itself the cause of a score).

Where a decoder loops, the breakdown by source (`by_source`) says: the same share among test examples whose
source repeats a word and among those whose source repeats none, and per third of the test set by source
length. A reference repeats a phrase almost only where its source repeats a word (6.5% of those in the
ddtp_de_en test split, none of the others), so a repeat where the source repeats nothing is a loop, and a
decoder that loops there has not merely copied a repetition of its input.

Words are whitespace-separated, as written: a loop inside one hyphenated word ("X11-to-to-to") is not counted.
Measured on compare_translation_positions' 12 runs, sacreBLEU's 13a tokens give higher shares (references
4.0% against 1.9%) in the same order.
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


def source_groups(sources: list[str]) -> dict[str, list[int]]:
    """{label: indices of `sources`}: whether a source repeats a word, then its third of the set by length in
    words (boundaries at the lengths a third and two thirds of the way up; ties may make the thirds unequal,
    and a group no source falls in is left out)."""
    lengths = [len(s.split()) for s in sources]
    ranked = sorted(lengths)
    low, high = ranked[len(ranked) // 3], ranked[2 * len(ranked) // 3]
    groups = {"source repeats a word": [i for i, s in enumerate(sources) if repeats(s, 1)],
              "source repeats none": [i for i, s in enumerate(sources) if not repeats(s, 1)],
              f"source of at most {low} words": [i for i, n in enumerate(lengths) if n <= low],
              f"source of {low + 1} to {high} words" if high > low + 1 else f"source of {high} words":
                  [i for i, n in enumerate(lengths) if low < n <= high],
              f"source of more than {high} words": [i for i, n in enumerate(lengths) if n > high]}
    return {label: found for label, found in groups.items() if found}


def by_source(hypotheses: dict[str, list[list[str]]], references: list[str], sources: list[str]) -> dict:
    """{"groups": {label: examples}, "references": {label: share}, "mean"/"std": {arch: {label: share}}}, the share
    of each group's test examples whose hypothesis repeats an n-gram; `hypotheses` {arch: one list per seed}."""
    groups = source_groups(sources)
    pick = lambda lines, idx: [lines[i] for i in idx]
    out = {"groups": {g: len(idx) for g, idx in groups.items()},
           "references": {g: share(pick(references, idx)) for g, idx in groups.items()}, "mean": {}, "std": {}}
    for arch, seeds in hypotheses.items():
        per = {g: [share(pick(h, idx)) for h in seeds] for g, idx in groups.items()}
        out["mean"][arch] = {g: statistics.fmean(v) for g, v in per.items()}
        out["std"][arch] = {g: statistics.stdev(v) if len(v) > 1 else None for g, v in per.items()}
    return out


def by_architecture(root: Path, rows: list[dict], references, sources=None) -> dict | None:
    """{"n", "references": share, "mean": {arch: share}, "std": {arch: share | None}, "by_source"} over the
    runs' test hypotheses (hyps_test.txt); None when a run has none. `references(run_dir)` and
    `sources(run_dir)` -> that run's test references and sources; without `sources`, no "by_source"."""
    runs = [root / r["run"] for r in rows]
    if not rows or not all((run / "hyps_test.txt").exists() for run in runs):
        return None
    texts = [read_test_hypotheses(run) for run in runs]
    hypotheses: dict[str, list[list[str]]] = {}
    for r, lines in zip(rows, texts):
        hypotheses.setdefault(r["architecture"], []).append(lines)
    refs = list(references(runs[0]))
    shares = {a: [share(h) for h in v] for a, v in hypotheses.items()}
    found = {"n": N, "references": share(refs),
             "mean": {a: statistics.fmean(v) for a, v in shares.items()},
             "std": {a: statistics.stdev(v) if len(v) > 1 else None for a, v in shares.items()},
             "by_source": None}
    if sources is not None:
        srcs = list(sources(runs[0]))
        counts = {"sources": len(srcs), "references": len(refs),
                  **{f"{r['run']}/hyps_test.txt": len(lines) for r, lines in zip(rows, texts)}}
        if len(set(counts.values())) != 1:
            raise ValueError(f"{root}: the test sources, references and hypotheses do not pair up line by line: "
                             + ", ".join(f"{k} {v}" for k, v in counts.items()))
        found["by_source"] = by_source(hypotheses, refs, srcs)
    return found
