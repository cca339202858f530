"""Paired significance: the translation p-values are sacreBLEU's own; the ROUGE bootstrap against an
exhaustive enumeration of every resample of a small case."""
import itertools

import numpy as np
import pytest
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.significance import PairedTest

from research.analysis import significance

REFS = ["the cat sat on the mat", "a quick brown fox jumps", "package for the gnome desktop",
        "library for parsing json files", "tools to convert images", "python bindings for the library"] * 3
BEST = ["the cat sat on a mat", "a quick brown fox jumps", "package for gnome desktop",
        "library for parsing json", "tools to convert the images", "python bindings for library"] * 3
OTHER = ["a cat on the mat", "the brown fox", "gnome desktop package", "json parsing library",
         "convert images tools", "bindings python"] * 3


def test_translation_p_values_are_sacrebleus_own(monkeypatch):
    got = significance.translation(BEST, {"other": OTHER, "same": BEST}, REFS)
    for test, n, label in (("bs", 1000, "bootstrap"), ("ar", 10000, "ar")):
        monkeypatch.setenv("SACREBLEU_SEED", "12345")
        _, want = PairedTest([("b", BEST), ("other", OTHER), ("same", BEST)], {"bleu": BLEU(), "chrf": CHRF()},
                             [REFS], test_type=test, n_samples=n)()
        for metric, column in (("bleu", "BLEU"), ("chrf", "chrF2")):
            assert got["other"][f"{metric}_{label}"] == want[column][1].p_value
            assert want[column][2].p_value == 1 / (n + 1)  # sacreBLEU on identical systems
            assert got["same"][f"{metric}_{label}"] == 1.0  # here: nothing to test
    assert got["other"]["bleu_ar"] < 0.05


def test_translation_p_values_do_not_depend_on_sacrebleus_worker_count():
    third = [h.replace("the ", "") for h in BEST]
    one = significance.translation(BEST, {"other": OTHER, "third": third}, REFS, workers=1)
    two = significance.translation(BEST, {"other": OTHER, "third": third}, REFS, workers=2)
    assert one == two and one["other"] != one["third"]


def exact_bootstrap_p(a: np.ndarray, b: np.ndarray) -> float:
    """Every one of the n^n resamples of n documents, equally likely: the exact bootstrap p-value
    (without the +1 of a Monte Carlo estimate)."""
    n = len(a)
    diffs = np.array([abs(a[list(r)].mean() - b[list(r)].mean()) for r in itertools.product(range(n), repeat=n)])
    return float(np.mean(diffs - diffs.mean() > abs(a.mean() - b.mean())))


@pytest.mark.parametrize("a, b", [
    ([0.9, 0.7, 0.8, 0.95, 0.6], [0.5, 0.6, 0.7, 0.4, 0.65]),   # clearly better
    ([0.5, 0.7, 0.6, 0.55, 0.62], [0.52, 0.66, 0.61, 0.58, 0.6]),  # about the same
])
def test_rouge_bootstrap_matches_the_exhaustive_enumeration(a, b):
    a, b = np.array(a), np.array(b)
    assert significance.paired_bootstrap(a, b, samples=20000) == pytest.approx(exact_bootstrap_p(a, b), abs=0.01)


def test_summarization_bootstraps_per_document_rouge():
    got = significance.summarization(BEST, {"other": OTHER, "same": BEST}, REFS)
    assert set(got["other"]) == {"rouge1_bootstrap", "rouge2_bootstrap", "rougeL_bootstrap"}
    assert got["other"]["rougeL_bootstrap"] < 0.05
    assert got["same"]["rougeL_bootstrap"] == 1.0  # identical: nothing to test


def test_sequence_accuracy_bootstraps_per_example_exact_matches():
    refs = ["a b", "b a", "c", "a a b", "b", "c c"] * 5
    best = list(refs)
    worse = ["a b", "a b", "c", "a b", "b", "c"] * 5  # 3 of 6 exact
    got = significance.sequence(best, {"worse": worse, "same": best}, refs)
    exact_best, exact_worse = np.ones(30), np.array([1, 0, 1, 0, 1, 0] * 5, float)
    assert got["worse"]["sequence_accuracy_bootstrap"] == significance.paired_bootstrap(exact_best, exact_worse)
    assert got["worse"]["sequence_accuracy_bootstrap"] < 0.05
    assert got["same"]["sequence_accuracy_bootstrap"] == 1.0


def test_equal_scores_are_not_a_difference():
    """Different outputs with the same score on every example: no resample differs at all, so the strict
    count of the sacreBLEU form would say p = 1/1001; there is nothing to test, p = 1."""
    refs = ["1 6 8", "5 7", "9"] * 4
    wrong_a = ["1 6 9", "5 8", "8"] * 4
    wrong_b = ["2 6 8", "4 7", "0"] * 4  # as wrong, differently: both 0% exact match
    assert significance.sequence(wrong_a, {"b": wrong_b}, refs)["b"]["sequence_accuracy_bootstrap"] == 1.0
    # equal means from different per-example scores are still tested as the procedure says
    a, b = np.array([1.0, 0.0, 1.0, 0.0]), np.array([0.0, 1.0, 0.0, 1.0])
    assert significance.paired_bootstrap(a, b, samples=20000) == pytest.approx(exact_bootstrap_p(a, b), abs=0.01)
    assert exact_bootstrap_p(a, b) > 0.05
