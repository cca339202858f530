"""Tagging scores: span F1 is seqeval's, per-tag and macro-F1 are scikit-learn's and a hand count's; the paired
bootstrap recomputes them per resample; the two tasks are registered with their deciding metrics."""
from __future__ import annotations

import numpy as np
import pytest
from seqeval.metrics import f1_score as seqeval_f1
from seqeval.metrics import precision_score as seqeval_precision
from seqeval.metrics import recall_score as seqeval_recall
from sklearn.metrics import accuracy_score
from sklearn.metrics import f1_score as sklearn_f1

from research import tasks
from research.analysis import significance
from research.tasks import tagging

# Span cases, one sentence each: a partial overlap (PER cut short), a wrong type (MISC predicted PER),
# an I- without a B- in both (a span all the same), an I- that starts a predicted span, a span cut short.
GOLD = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "I-ORG", "I-ORG", "O", "B-MISC"], ["O", "I-PER", "I-PER", "O"],
        ["B-LOC", "O", "B-PER", "I-PER", "I-PER"]]
PRED = [["B-PER", "O", "O", "B-LOC"], ["B-ORG", "I-ORG", "I-ORG", "O", "B-PER"], ["O", "I-PER", "I-PER", "O"],
        ["I-LOC", "O", "B-PER", "I-PER", "O"]]
line = lambda tags: " ".join(tags)


def test_span_f1_is_seqevals_on_crafted_cases_and_a_hand_count():
    got = tasks.get("span_tagging").score([line(p) for p in PRED], [line(g) for g in GOLD], None)
    assert got["span_f1"] == seqeval_f1(GOLD, PRED)
    assert got["span_precision"] == seqeval_precision(GOLD, PRED) and got["span_recall"] == seqeval_recall(GOLD, PRED)
    # By hand: right PER(0), LOC, ORG, PER(1-2), LOC(0) -> 4 right (the I- spans count), 3 predicted wrongly
    # (PER cut at 0, PER for MISC, PER cut at 2-3), 3 missed (PER 0-1, MISC, PER 2-4): P = R = F1 = 4/7.
    assert got["span_f1"] == pytest.approx(4 / 7) and got["span_precision"] == pytest.approx(4 / 7)
    # Per type: LOC 2 of 2 right; PER 1 right (the I- span) of 3 gold and 4 predicted; ORG right; MISC missed.
    assert got["f1_LOC"] == 1.0 and got["f1_ORG"] == 1.0 and got["f1_MISC"] == 0.0
    assert got["f1_PER"] == pytest.approx(2 * (1 / 4) * (1 / 3) / (1 / 4 + 1 / 3))
    words = sum(len(g) for g in GOLD)
    assert got["accuracy"] == pytest.approx(sum(a == b for g, p in zip(GOLD, PRED) for a, b in zip(g, p)) / words)


@pytest.mark.parametrize("gold,pred", [
    ([["S-PER", "O", "B-LOC", "E-LOC"]], [["S-PER", "O", "B-LOC", "I-LOC"]]),   # BIOES; an open span at the end
    ([["B-A0", "I-A0", "B-V", "O", "B-AM-TMP"]], [["B-A0", "B-A0", "B-V", "I-AM-TMP", "I-AM-TMP"]]),  # SRL types
    ([["O", "O"]], [["O", "O"]]),                                               # no span anywhere: 0, not an error
    ([["B-X", "I-Y", "I-Y"], ["I-X"]], [["B-X", "B-Y", "I-Y"], ["B-X"]]),        # a type change inside a span
])
def test_span_f1_is_seqevals_on_other_schemes(gold, pred):
    got = tagging.span_scores([line(p) for p in pred], [line(g) for g in gold])
    assert got["span_f1"] == seqeval_f1(gold, pred, zero_division=0)
    counts = tagging.span_counts([line(p) for p in pred], [line(g) for g in gold]).sum(0)  # what the bootstrap sums
    assert tagging.macro_f1_of(counts) == pytest.approx(got["span_f1"])


def test_plain_per_tag_and_macro_f1_by_hand():
    gold = ["O COMMA O PERIOD", "O O COMMA O PERIOD"]
    pred = ["O O O PERIOD", "COMMA O COMMA O COLON"]
    got = tasks.get("tagging").score(pred, gold, None)
    # COMMA: 1 right, 1 false alarm, 1 missed -> 0.5. PERIOD: 1 of 2 found, no false alarm -> 2/3.
    # COLON: predicted once, never gold -> 0. O is not averaged. Words right: 3 + 3 of 9.
    assert got["f1_COMMA"] == pytest.approx(0.5) and got["f1_PERIOD"] == pytest.approx(2 / 3) and got["f1_COLON"] == 0.0
    assert got["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 0.0) / 3) and got["accuracy"] == pytest.approx(6 / 9)
    assert "f1_O" not in got


NAMES = ("O", "O", "O", "COMMA", "PERIOD", "COLON")  # O thrice: the most frequent tag, as in punctuation


def _random_tags(n: int, seed: int) -> tuple[list[str], list[str]]:
    """(predictions, gold): n sentences of 3..11 random tags, 70% of the predictions right."""
    rng = np.random.default_rng(seed)
    gold = [line(NAMES[k] for k in rng.integers(0, len(NAMES), rng.integers(3, 12))) for _ in range(n)]
    return _noisy(gold, rng), gold


def _noisy(gold: list[str], rng, right: float = 0.7) -> list[str]:
    return [line(t if rng.random() < right else NAMES[rng.integers(0, len(NAMES))] for t in g.split()) for g in gold]


def test_plain_scores_are_sklearns_on_random_tags():
    pred, gold = _random_tags(120, 0)
    flat_gold = [t for s in gold for t in s.split()]
    flat_pred = [t for s in pred for t in s.split()]
    labels = sorted(set(flat_gold + flat_pred) - {"O"})
    got = tagging.plain_scores(pred, gold)
    assert got["macro_f1"] == sklearn_f1(flat_gold, flat_pred, labels=labels, average="macro")
    assert got["accuracy"] == accuracy_score(flat_gold, flat_pred)
    for tag, f in zip(labels, sklearn_f1(flat_gold, flat_pred, labels=labels, average=None)):
        assert got[f"f1_{tag}"] == f
    assert tagging.macro_f1_of(tagging.plain_counts(pred, gold).sum(0)) == pytest.approx(got["macro_f1"])


def test_the_macro_f1_bootstrap_is_sklearn_recomputed_on_each_resample():
    """The vectorised bootstrap against a loop that rescores every resample with plain_scores (scikit-learn)."""
    base, gold = _random_tags(60, 1)
    other = _noisy(gold, np.random.default_rng(2), right=0.8)  # another system, a little better
    samples = 60
    got = tagging.paired_bootstrap_f1(tagging.plain_counts(base, gold), tagging.plain_counts(other, gold),
                                      samples=samples)
    idx = np.random.default_rng(significance.SEED).choice(len(gold), size=(samples, len(gold)), replace=True)
    pick = lambda xs, ix: [xs[i] for i in ix]
    diffs = np.array([abs(tagging.plain_scores(pick(base, ix), pick(gold, ix))["macro_f1"]
                          - tagging.plain_scores(pick(other, ix), pick(gold, ix))["macro_f1"]) for ix in idx])
    observed = abs(tagging.plain_scores(base, gold)["macro_f1"] - tagging.plain_scores(other, gold)["macro_f1"])
    assert got == pytest.approx((np.sum(diffs - diffs.mean() > observed) + 1) / (samples + 1))


def test_paired_tests_give_one_to_identical_systems_and_small_p_to_a_clearly_better_one():
    pred, gold = _random_tags(200, 3)
    test = tasks.get("tagging").paired_test
    out = test(pred, {"same": list(pred), "perfect": list(gold)}, gold)
    assert out["same"] == {"macro_f1_bootstrap": 1.0} and out["perfect"]["macro_f1_bootstrap"] < 0.01
    spans = tasks.get("span_tagging").paired_test
    gold_spans = [line(g) for g in GOLD] * 20
    weak = [line(p) for p in PRED] * 20
    out = spans(weak, {"perfect": gold_spans, "weak": list(weak)}, gold_spans)
    assert out["weak"] == {"span_f1_bootstrap": 1.0} and out["perfect"]["span_f1_bootstrap"] < 0.01


def test_tasks_are_registered_with_their_deciding_metrics():
    assert {"tagging", "span_tagging"} <= set(tasks.names())
    assert tasks.by_metric("macro_f1") is tasks.get("tagging") and tasks.by_metric("span_f1") is tasks.get("span_tagging")
    assert not tasks.get("tagging").ensembles and not tasks.get("span_tagging").ensembles


def test_sentences_of_other_lengths_are_refused():
    with pytest.raises(ValueError, match="sentence 2: 2 predicted tags for 3 words"):
        tagging.plain_scores(["O", "O O"], ["O", "O O O"])
