"""Corpus metrics for decoded text: BLEU and chrF (sacreBLEU), ROUGE, sequence accuracy.

Scores are computed by the reference implementations, called plainly, so the
numbers match what papers report: sacreBLEU on detokenized hypotheses against
raw references (its own tokenizer, signature returned for reproducibility),
and Google's rouge-score package for ROUGE. Sequence accuracy (the diagnostic
tasks) compares whitespace-separated symbols, which need no library.
"""
from __future__ import annotations

import numpy as np
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU, CHRF

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def _check(hyps: list[str], refs: list[str]) -> None:
    """Rejects empty or misaligned corpora, which the libraries score silently."""
    if not hyps or not refs:
        raise ValueError(f"need at least one hypothesis and reference, got {len(hyps)} and {len(refs)}")
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")


def bleu(hyps: list[str], refs: list[str]) -> dict:
    """Corpus BLEU and chrF with sacreBLEU's default settings (one reference each).

    Args:
      hyps: detokenized system outputs, one string per segment.
      refs: raw reference strings, aligned with hyps.

    Returns:
      {"bleu": float, "chrf": float, "bleu_signature": str, "chrf_signature": str};
      scores on the 0-100 scale.
    """
    _check(hyps, refs)
    bleu_metric, chrf_metric = BLEU(), CHRF()
    bleu_score = bleu_metric.corpus_score(hyps, [refs])
    chrf_score = chrf_metric.corpus_score(hyps, [refs])
    return {
        "bleu": bleu_score.score,
        "chrf": chrf_score.score,
        "bleu_signature": str(bleu_metric.get_signature()),
        "chrf_signature": str(chrf_metric.get_signature()),
    }


def rouge_per_example(hyps: list[str], refs: list[str]) -> dict[str, np.ndarray]:
    """Per-example ROUGE F-measures (0-1) with Porter stemming: {"rouge1", ...} -> [N].

    What `rouge` averages, and what the paired bootstrap of
    `research/analysis/significance.py` resamples. rougeLsum treats newlines
    as sentence boundaries: put one sentence per line in both hyps and refs.
    """
    _check(hyps, refs)
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    out = {name: np.empty(len(hyps)) for name in ROUGE_TYPES}
    for i, (hyp, ref) in enumerate(zip(hyps, refs)):
        scores = scorer.score(ref, hyp)  # (target, prediction)
        for name in ROUGE_TYPES:
            out[name][i] = scores[name].fmeasure
    return out


def rouge(hyps: list[str], refs: list[str]) -> dict:
    """Mean per-example ROUGE F-measures, x100, with Porter stemming.

    Returns:
      {"rouge1", "rouge2", "rougeL", "rougeLsum"} -> float on the 0-100 scale.
    """
    return {name: 100.0 * float(np.sum(v)) / len(hyps) for name, v in rouge_per_example(hyps, refs).items()}


def exact_per_example(hyps: list[str], refs: list[str]) -> np.ndarray:
    """1.0 where the hypothesis is the reference symbol for symbol (whitespace-separated), else 0.0: [N]."""
    _check(hyps, refs)
    return np.array([h.split() == r.split() for h, r in zip(hyps, refs)], np.float64)


def length_buckets(lengths, width: int) -> list[tuple[int, int]]:
    """The (lo, hi) target-length buckets of `width` symbols that `lengths` fall in, in order: 1-4, 5-8, ..."""
    return sorted({((n - 1) // width * width + 1, (n - 1) // width * width + width) for n in lengths})


def sequence(hyps: list[str], refs: list[str], bucket: int = 4) -> dict:
    """Exact-match sequence accuracy, token accuracy and sequence accuracy per target-length bucket, x100.

    Token accuracy is position by position over the reference: symbol i of the
    hypothesis against symbol i of the reference, so a hypothesis that drops or
    inserts one symbol early scores low on every later position (as in
    tensor2tensor's sequence metrics); symbols beyond the reference's end are
    not counted. Buckets are by the reference's length in symbols,
    `bucket` wide: `sequence_accuracy_len_5_8` and its example count `examples_len_5_8`.

    Returns:
      {"sequence_accuracy", "token_accuracy", "sequence_accuracy_len_{lo}_{hi}", "examples_len_{lo}_{hi}", ...}.
    """
    exact = exact_per_example(hyps, refs)
    split = [(h.split(), r.split()) for h, r in zip(hyps, refs)]
    correct = sum(sum(a == b for a, b in zip(h, r)) for h, r in split)
    total = sum(len(r) for _, r in split)
    out = {"sequence_accuracy": 100.0 * float(exact.mean()), "token_accuracy": 100.0 * correct / max(total, 1)}
    lengths = np.array([len(r) for _, r in split])
    for lo, hi in length_buckets(lengths, bucket):
        inside = (lengths >= lo) & (lengths <= hi)
        out[f"sequence_accuracy_len_{lo}_{hi}"] = 100.0 * float(exact[inside].mean())
        out[f"examples_len_{lo}_{hi}"] = int(inside.sum())
    return out
