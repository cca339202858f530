"""Metrics must agree exactly with sacreBLEU and rouge-score called directly."""

import numpy as np
import pytest
import sacrebleu
from rouge_score import rouge_scorer

from research.decoding.metrics import bleu, length_buckets, rouge, sequence

HYPS = [
    "The cat sat on the mat.",
    "A quick brown fox jumps over the lazy dogs!",
    "Completely unrelated output",
    "It's 5 o'clock, isn't it?",
]
REFS = [
    "The cat is sitting on the mat.",
    "The quick brown fox jumped over the lazy dog.",
    "Nothing in common here",
    "It is five o'clock, isn't it?",
]
# Multi-sentence summaries, one sentence per line, for rougeLsum.
SUMMARY_HYPS = ["the cats were running.\nthey stopped at noon.", "rain fell all day"]
SUMMARY_REFS = ["the cat ran.\nit stopped at noon.\nthen it slept.", "it rained all day long"]


def test_bleu_and_chrf_match_sacrebleu():
    got = bleu(HYPS, REFS)
    assert got["bleu"] == sacrebleu.corpus_bleu(HYPS, [REFS]).score
    assert got["chrf"] == sacrebleu.corpus_chrf(HYPS, [REFS]).score
    assert 0.0 < got["bleu"] < 100.0
    for key, tag in (("bleu_signature", "tok:13a"), ("chrf_signature", "nc:6")):
        assert tag in got[key] and "nrefs:1" in got[key] and f"version:{sacrebleu.__version__}" in got[key]


def test_identical_text_scores_100():
    got = bleu(REFS, REFS)
    assert got["bleu"] == pytest.approx(100.0) and got["chrf"] == pytest.approx(100.0)


def test_rouge_matches_rouge_score_mean_f_measure():
    hyps, refs = HYPS + SUMMARY_HYPS, REFS + SUMMARY_REFS
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    per_example = [scorer.score(r, h) for h, r in zip(hyps, refs)]
    got = rouge(hyps, refs)
    assert set(got) == {"rouge1", "rouge2", "rougeL", "rougeLsum"}
    for name, value in got.items():
        assert value == pytest.approx(100 * np.mean([s[name].fmeasure for s in per_example]), abs=1e-12)


def test_rouge_lsum_uses_newlines_as_sentence_breaks():
    """Swapped sentences: one LCS over the whole text finds half, the per-sentence union all."""
    hyp, ref = "dogs bark loudly\ncats sleep all day", "cats sleep all day\ndogs bark loudly"
    got = rouge([hyp], [ref])
    assert got["rougeLsum"] == pytest.approx(100.0)
    assert got["rougeL"] < 60.0


def test_stemming_is_on():
    assert rouge(["the cats running"], ["the cat runs"])["rouge1"] == pytest.approx(100.0)


@pytest.mark.parametrize("fn", [bleu, rouge])
def test_empty_or_misaligned_inputs_raise(fn):
    with pytest.raises(ValueError, match="at least one"):
        fn([], [])
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        fn(["a", "b"], ["a"])


def test_sequence_accuracy_matches_a_hand_count():
    refs = ["a b c", "a b c", "a", "a b c d e", "x y", "a b c d e"]
    hyps = ["a b c", "a c", "a", "a b c d e f", "x  y", "b c d e"]
    got = sequence(hyps, refs, bucket=2)
    # exact (whitespace-separated): 1, 0, 1, 0 (one symbol too many), 1, 0 -> 3 of 6
    assert got["sequence_accuracy"] == pytest.approx(50.0)
    # position by position over the references: 3 + 1 (a) + 1 + 5 + 2 + 0 (shifted) = 12 of 3+3+1+5+2+5 = 19
    assert got["token_accuracy"] == pytest.approx(100 * 12 / 19)
    # buckets by reference length: 1-2: "a", "x y" (2 of 2); 3-4: two "a b c" (1 of 2); 5-6: two long ones (0 of 2)
    assert {k: v for k, v in got.items() if "_len_" in k} == {
        "sequence_accuracy_len_1_2": 100.0, "examples_len_1_2": 2,
        "sequence_accuracy_len_3_4": 50.0, "examples_len_3_4": 2,
        "sequence_accuracy_len_5_6": 0.0, "examples_len_5_6": 2}


def test_length_buckets_cover_only_lengths_present():
    assert length_buckets([1, 2, 9], 4) == [(1, 4), (9, 12)]
    assert length_buckets([3, 3], 1) == [(3, 3)]
