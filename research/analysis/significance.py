"""Paired significance of a system against the best one on the same test set.

Translation: sacreBLEU's paired bootstrap resampling (1,000 resamples) and
paired approximate randomization (10,000 trials) on BLEU and chrF
(`sacrebleu.significance.PairedTest`), with its fixed seed (12,345), so a
report's p-values can be recomputed with `sacrebleu --paired-bs` on the same
files. The p-values are sacreBLEU's exactly: its own per-sentence statistics,
observed scores and random draws, with every resample and trial scored at
once by `sacrebleu_vectorised` (sacreBLEU's loop over them took a minute of a
report); tests/analysis/test_significance.py asserts them equal (`==`) to
`PairedTest`'s. Summarization: a paired bootstrap over per-document ROUGE F-measures
from rouge-score, in the same form as sacreBLEU's (Koehn 2004, as the Moses
script): resample documents with replacement, take the absolute difference
of the two systems' means in each resample, centre those differences on
their mean, and count how often they exceed the observed difference;
p = (count + 1) / (resamples + 1). Vectorised: all resamples are one index
array. As in sacreBLEU, a resample must EXCEED the observed difference;
sacreBLEU would therefore give two IDENTICAL systems the smallest p,
1 / (resamples + 1). A system whose hypotheses equal the baseline's is
given p = 1 here instead: there is no difference to test; so is one with
the baseline's score on every example (in the bootstrap: nine architectures
that all scored 0% exact match on addition's longer test were "different"
at p = 0.001 before). Sequence tasks (exact match): the same paired bootstrap
over per-example 0/1 scores.

Seeds: a system's hypotheses may be several seeds' test outputs joined in
one order (the same seeds for every system), so each comparison pools the
seeds: the p-value then speaks of the architecture, not of one lucky seed.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from research.analysis import sacrebleu_vectorised
from research.decoding.metrics import exact_per_example, rouge_per_example

BOOTSTRAP_SAMPLES = 1000
AR_TRIALS = 10000
SEED = 12345  # sacreBLEU's default SACREBLEU_SEED; the ROUGE bootstrap uses it too
IDENTICAL_TRANSLATION = {"bleu_bootstrap": 1.0, "bleu_ar": 1.0, "chrf_bootstrap": 1.0, "chrf_ar": 1.0}


def translation(baseline: Sequence[str], systems: dict[str, Sequence[str]], refs: Sequence[str],
                seed: int = SEED, bootstrap_samples: int = BOOTSTRAP_SAMPLES,
                ar_trials: int = AR_TRIALS) -> dict[str, dict[str, float]]:
    """p-values of each system against `baseline`: {name: {"bleu_bootstrap", "bleu_ar", "chrf_bootstrap", "chrf_ar"}},
    those of `PairedTest` with SACREBLEU_SEED=seed (falsy: unseeded, as sacreBLEU)."""
    same = {n for n, h in systems.items() if list(h) == list(baseline)}
    systems = {n: h for n, h in systems.items() if n not in same}
    if not systems:
        return {n: IDENTICAL_TRANSLATION for n in same}
    named = [("baseline", list(baseline)), *((n, list(h)) for n, h in systems.items())]
    for name, hyps in named:
        if len(hyps) != len(refs):
            raise ValueError(f"{name}: {len(hyps)} hypotheses for {len(refs)} references")
    out = sacrebleu_vectorised.paired_p_values(named[0][1], dict(named[1:]), list(refs), bootstrap_samples,
                                               ar_trials, seed)
    return {**out, **{n: IDENTICAL_TRANSLATION for n in same}}


def paired_bootstrap(baseline: np.ndarray, system: np.ndarray, samples: int = BOOTSTRAP_SAMPLES,
                     seed: int = SEED) -> float:
    """p-value of the difference of two systems' mean per-document scores (see the module docstring)."""
    a, b = np.asarray(baseline, np.float64), np.asarray(system, np.float64)
    if a.shape != b.shape or a.ndim != 1 or not len(a):
        raise ValueError(f"paired scores must be two equal non-empty vectors, got {a.shape} and {b.shape}")
    if np.array_equal(a, b):  # the same score on every example: nothing to test (the strict count below
        return 1.0             # would find no resample beyond the observed 0 and give the smallest p)
    observed = abs(a.mean() - b.mean())
    idx = np.random.default_rng(seed).choice(len(a), size=(samples, len(a)), replace=True)
    diffs = np.abs(a[idx].mean(1) - b[idx].mean(1))
    return float((np.sum(diffs - diffs.mean() > observed) + 1) / (samples + 1))


def summarization(baseline: Sequence[str], systems: dict[str, Sequence[str]], refs: Sequence[str],
                  seed: int = SEED) -> dict[str, dict[str, float]]:
    """Bootstrap p-values of each system against `baseline` on ROUGE-1/2/L: {name: {"rouge1_bootstrap", ...}}."""
    base = rouge_per_example(list(baseline), list(refs))
    out = {}
    for name, hyps in systems.items():
        if list(hyps) == list(baseline):
            out[name] = {f"{k}_bootstrap": 1.0 for k in ("rouge1", "rouge2", "rougeL")}
            continue
        scores = rouge_per_example(list(hyps), list(refs))
        out[name] = {f"{k}_bootstrap": paired_bootstrap(base[k], scores[k], seed=seed) for k in ("rouge1", "rouge2", "rougeL")}
    return out


def sequence(baseline: Sequence[str], systems: dict[str, Sequence[str]], refs: Sequence[str],
             seed: int = SEED) -> dict[str, dict[str, float]]:
    """Bootstrap p-values of each system against `baseline` on exact-match accuracy: {name: {"sequence_accuracy_bootstrap"}}."""
    base = exact_per_example(list(baseline), list(refs))
    return {name: {"sequence_accuracy_bootstrap": 1.0 if list(hyps) == list(baseline) else
                   paired_bootstrap(base, exact_per_example(list(hyps), list(refs)), seed=seed)}
            for name, hyps in systems.items()}

