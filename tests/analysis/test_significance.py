"""Paired significance: the translation p-values equal (`==`) those of sacreBLEU's own PairedTest, and its
vectorised trial scores equal sacreBLEU's scoring of the same trials; the ROUGE bootstrap against an
exhaustive enumeration of every resample of a small case."""
import itertools
import random

import numpy as np
import pytest
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.significance import PairedTest

from research.analysis import sacrebleu_vectorised, significance

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


WORDS = ("the a cat dog sat on mat quick brown fox jumps over lazy package library json files tools images "
         "python").split()


def corpus(n: int, longest: int, seed: int):
    """References of 1..`longest` words from WORDS, a baseline that corrupts them (30% of words replaced,
    some dropped) and systems of every kind: nearly the baseline, worse, as good, no match at all (and one
    empty line), all empty. Short references (`longest` < 4) leave BLEU's higher orders without n-grams."""
    rng = random.Random(seed)
    refs = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, longest))) for _ in range(n)]

    def corrupt(lines, p):
        out = []
        for line in lines:
            words = [w if rng.random() > p else rng.choice(WORDS) for w in line.split()]
            if words and rng.random() < p / 2:
                words.pop(rng.randrange(len(words)))
            out.append(" ".join(words))
        return out

    base = corrupt(refs, 0.3)
    systems = {"close": [corrupt([b], 0.3)[0] if rng.random() < 0.2 else b for b in base],
               "worse": corrupt(refs, 0.4), "similar": corrupt(refs, 0.3),
               "no_match": ["xyz"] * (n - 1) + [""], "empty": [""] * n}
    return refs, base, systems


def sacrebleus_p_values(base, systems, refs, test, n, seed=12345):
    """{(system, metric): p} from sacreBLEU's PairedTest itself."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SACREBLEU_SEED", str(seed))
        _, scores = PairedTest([("b", base), *systems.items()], {"bleu": BLEU(), "chrf": CHRF()}, [refs],
                               test_type=test, n_samples=n)()
    return {(name, metric): scores[column][i].p_value for metric, column in (("bleu", "BLEU"), ("chrf", "chrF2"))
            for i, name in enumerate(systems, start=1)}


@pytest.mark.parametrize("n, longest, seed", [(120, 12, 0), (120, 3, 1), (60, 2, 2)])
def test_vectorised_p_values_equal_sacrebleus_on_systems_of_every_kind(n, longest, seed):
    refs, base, systems = corpus(n, longest, seed)
    got = significance.translation(base, systems, refs, bootstrap_samples=100, ar_trials=200)
    for test, samples, label in (("bs", 100, "bootstrap"), ("ar", 200, "ar")):
        want = sacrebleus_p_values(base, systems, refs, test, samples)
        assert {(s, m): got[s][f"{m}_{label}"] for s, m in want} == want
    if longest == 12:  # not only the smallest p-values: "similar" is as good as the baseline
        assert got["similar"]["bleu_ar"] > 0.5 and got["similar"]["chrf_bootstrap"] > 0.1


def test_vectorised_p_values_follow_the_seed():
    refs, base, systems = corpus(80, 12, 3)
    systems = {k: systems[k] for k in ("close", "similar")}
    got = significance.translation(base, systems, refs, seed=7, bootstrap_samples=100, ar_trials=200)
    for test, samples, label in (("bs", 100, "bootstrap"), ("ar", 200, "ar")):
        want = sacrebleus_p_values(base, systems, refs, test, samples, seed=7)
        assert {(s, m): got[s][f"{m}_{label}"] for s, m in want} == want


def test_a_systems_p_values_do_not_depend_on_the_others():
    """sacreBLEU re-seeds every system's test alike, so each system sees the same draws."""
    refs, base, systems = corpus(80, 12, 4)
    together = significance.translation(base, systems, refs, bootstrap_samples=100, ar_trials=200)
    alone = significance.translation(base, {"similar": systems["similar"]}, refs, bootstrap_samples=100, ar_trials=200)
    assert alone["similar"] == together["similar"]


def sacrebleus_scores(metric, rows: np.ndarray) -> np.ndarray:
    """Each row scored by sacreBLEU as its tests do: `np.array([metric._compute_score_from_stats(row).score ...])`."""
    return np.array([metric._compute_score_from_stats(row).score for row in rows])


@pytest.mark.parametrize("metric", [BLEU(), CHRF()], ids=["bleu", "chrf"])
@pytest.mark.parametrize("dtype", [np.int64, np.float32], ids=["ar_int64", "bootstrap_float32"])
def test_trial_scores_equal_sacrebleus_in_value_and_dtype(metric, dtype):
    """Every branch of compute_bleu and _compute_f_score: sentences with no match (BLEU's early return 0.0),
    an empty hypothesis (chrF's Python 0.0, which makes sacreBLEU's list of float32 scores a float64 array),
    orders without n-grams (BLEU's break), smoothed zero-match orders; per sentence and summed as trials."""
    refs, base, systems = corpus(60, 5, 5)
    rows = np.array([s for hyps in [base, *systems.values()] for s in metric._extract_corpus_statistics(hyps, [refs])])
    rng = np.random.default_rng(0)
    trials = np.array([rows[rng.choice(len(rows), size=k)].sum(0) for k in (1, 2, 3, 5, 40) for _ in range(20)])
    for stats in (rows, trials, trials[(trials != 0).any(1)]):
        stats = stats.astype(dtype)
        got, want = sacrebleu_vectorised._scores(metric, stats), sacrebleus_scores(metric, stats)
        assert got.dtype == want.dtype and np.array_equal(got, want)
    if isinstance(metric, CHRF) and dtype == np.float32:  # both dtypes of sacreBLEU's lists were seen
        assert sacrebleus_scores(metric, rows.astype(dtype)).dtype == np.float64
        assert sacrebleus_scores(metric, trials[-20:].astype(dtype)).dtype == np.float32


def test_bootstrap_sums_beyond_float32s_exact_integers_are_sacrebleus_own():
    """Resample totals over 2**24 round in float32, so they are summed as sacreBLEU sums them."""
    rng = np.random.default_rng(0)
    big = rng.integers(0, 3_000_000, size=(50, 3)).astype(np.float32)
    small = rng.integers(0, 30, size=(50, 4)).astype(np.float32)
    idxs = rng.choice(50, size=(20, 50), replace=True)
    got_big, got_small = sacrebleu_vectorised._bootstrap_sums(idxs, [big, small])
    assert got_big.max() > 2 ** 24
    for got, stats in ((got_big, big), (got_small, small)):
        want = np.stack([s.sum(0) for s in stats[idxs]])  # sacreBLEU: stats_np[idxs], each .sum(0)
        assert got.dtype == want.dtype == np.float32 and np.array_equal(got, want)


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
