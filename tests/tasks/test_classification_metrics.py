"""Classification scores are scikit-learn's, the TF-IDF baseline is scikit-learn's, the tasks are registered."""
from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import MultiLabelBinarizer
from threadpoolctl import threadpool_limits

from research import tasks
from research.tasks import classification
from tests.helpers.classification import run_config, sample_corpus

LABELS = ["admin", "devel", "games", "libs", "python"]


def _crafted(n: int = 200, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    gold = [LABELS[i] for i in rng.integers(0, 5, n)]
    pred = [g if rng.random() < 0.6 else LABELS[rng.integers(0, 4)] for g in gold]  # "python" never predicted wrongly
    return pred, gold


def test_single_label_scores_are_sklearns():
    pred, gold = _crafted()
    got = tasks.get("classification").score(pred, gold, None)
    assert got == {"accuracy": accuracy_score(gold, pred), "macro_f1": f1_score(gold, pred, average="macro")}


def test_single_label_scores_by_hand():
    # a: 2 right of 3 gold (1 predicted as b); b: 1 right, 1 false positive; c: predicted once, never gold.
    gold, pred = ["a", "a", "a", "b"], ["a", "a", "b", "c"]
    got = classification.single_scores(pred, gold)
    f1_a, f1_b, f1_c = 2 * 1 * (2 / 3) / (1 + 2 / 3), 0.0, 0.0  # b: precision 0/1, recall 0/1
    assert got["accuracy"] == 0.5 and got["macro_f1"] == pytest.approx((f1_a + f1_b + f1_c) / 3)


def _sets(n: int = 150, seed: int = 1) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    tags = [f"t{i}" for i in range(12)]
    gold = [sorted({tags[j] for j in rng.integers(0, 12, rng.integers(0, 4))}) for _ in range(n)]
    pred = [sorted({t for t in g if rng.random() < 0.7} | {tags[j] for j in rng.integers(0, 12, rng.integers(0, 2))})
            for g in gold]
    return [json.dumps(p) for p in pred], [json.dumps(g) for g in gold]


def test_multilabel_scores_are_sklearns():
    pred, gold = _sets()
    got = tasks.get("multilabel").score(pred, gold, None)
    classes = sorted({t for s in pred + gold for t in json.loads(s)})
    binarizer = MultiLabelBinarizer(classes=classes)
    y = binarizer.fit_transform([json.loads(g) for g in gold])
    p = binarizer.transform([json.loads(h) for h in pred])
    assert got == {"micro_f1": f1_score(y, p, average="micro"), "macro_f1": f1_score(y, p, average="macro", zero_division=0),
                   "subset_accuracy": accuracy_score(y, p)}


def test_multilabel_scores_by_hand():
    gold = [["a", "b"], ["b"], []]
    pred = [["a"], ["b", "c"], ["c"]]
    got = classification.multi_scores([json.dumps(p) for p in pred], [json.dumps(g) for g in gold])
    # true positives a, b; false positives c, c; false negative b (first text): micro-F1 = 2*2 / (2*2 + 2 + 1).
    # Per label: a F1 1; b precision 1, recall 1/2, F1 2/3; c F1 0. Macro over the three labels mentioned.
    assert got["micro_f1"] == pytest.approx(4 / 7)
    assert got["macro_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert got["subset_accuracy"] == 0.0
    assert classification.multi_scores(['[]', '["a"]'], ['[]', '["a"]']) == {"micro_f1": 1.0, "macro_f1": 1.0,
                                                                             "subset_accuracy": 1.0}


def test_confusion_matrix_rows_are_gold_columns_predictions():
    pred, gold = _crafted(60)
    assert classification.confusion(pred, gold, LABELS) == confusion_matrix(gold, pred, labels=LABELS).tolist()


def test_paired_tests_give_one_for_identical_systems_and_small_p_for_a_clear_win():
    pred, gold = _crafted(300)
    worse = [LABELS[0]] * len(gold)
    single = classification.accuracy_test(pred, {"same": pred, "worse": worse}, gold)
    assert single["same"] == {"accuracy_bootstrap": 1.0} and single["worse"]["accuracy_bootstrap"] < 0.01
    sets, gold_sets = _sets(300)
    multi = classification.micro_f1_test(sets, {"same": sets, "empty": ["[]"] * 300}, gold_sets)
    assert multi["same"] == {"micro_f1_bootstrap": 1.0} and multi["empty"]["micro_f1_bootstrap"] < 0.01


def test_both_tasks_are_registered_with_their_deciding_metric():
    assert (tasks.get("classification").metric, tasks.get("multilabel").metric) == ("accuracy", "micro_f1")
    assert tasks.by_metric("accuracy").name == "classification" and tasks.by_metric("micro_f1").name == "multilabel"
    assert not tasks.get("classification").ensembles and tasks.get("translation").ensembles


# The settings research/models/tfidf.py documents, spelled out here: the test builds the baseline itself.
def _vectorizer():
    return TfidfVectorizer(lowercase=True, ngram_range=(1, 2), min_df=2, sublinear_tf=True, dtype=np.float32)


@pytest.mark.parametrize("task", ["classification", "multilabel"])
def test_tfidf_baseline_is_sklearn_fitted_by_hand_on_the_same_split(tmp_path, task):
    cfg = run_config("cnn", tmp_path, task=task)
    texts = sample_corpus(tmp_path, task=task)
    got = tasks.run_baseline(tasks.get(task), cfg, texts, tmp_path / "run", write=False)
    assert set(got) == {"validation", "test"}
    with threadpool_limits(limits=1):  # as research/models/tfidf.py fits: the same float sums
        want = _by_hand(task, [texts.train[i] for i in range(len(texts.train))],
                        {split: _lines(cfg.data.dir, split) for split in ("validation", "test")})
    for split in ("validation", "test"):
        assert got[split] == pytest.approx(want[split], abs=1e-12), split
    assert 0.1 < got["validation"][f"baseline_tfidf_{tasks.get(task).metric}"] < 1.0  # it learned something
    # A second call reads the cache in data.tfds_dir instead of fitting again.
    assert list((tmp_path / "tfds" / "baselines").glob("tfidf-*.json"))
    assert tasks.run_baseline(tasks.get(task), cfg, texts, tmp_path / "run", write=False) == got


def _by_hand(task: str, train: list[dict], splits: dict[str, list[str]]) -> dict:
    """The baseline's scores per split, from scikit-learn directly (the files' own fields, not our reader's)."""
    vectorizer = _vectorizer()
    x = vectorizer.fit_transform([r["source"] for r in train])
    if task == "classification":
        model = LogisticRegression(C=10.0, max_iter=1000).fit(x, [r["target"] for r in train])
    else:
        binarizer = MultiLabelBinarizer().fit([json.loads(r["target"]) for r in train])
        model = OneVsRestClassifier(LogisticRegression(C=10.0, solver="liblinear")).fit(
            x, binarizer.transform([json.loads(r["target"]) for r in train]))
    out = {}
    for split, lines in splits.items():
        rows = [json.loads(line) for line in lines]
        xs = vectorizer.transform([r["text"] for r in rows])
        if task == "classification":
            gold, pred = [r["label"] for r in rows], model.predict(xs)
            out[split] = {"baseline_tfidf_accuracy": accuracy_score(gold, pred),
                          "baseline_tfidf_macro_f1": f1_score(gold, pred, average="macro", zero_division=0)}
            continue
        pred = [set(binarizer.classes_[row]) for row in model.predict_proba(xs) >= 0.5]
        classes = sorted(set().union(*[set(r["tags"]) for r in rows], *pred))
        both = MultiLabelBinarizer(classes=classes).fit([])
        y, p = both.transform([r["tags"] for r in rows]), both.transform(pred)
        out[split] = {"baseline_tfidf_micro_f1": f1_score(y, p, average="micro", zero_division=0),
                      "baseline_tfidf_macro_f1": f1_score(y, p, average="macro", zero_division=0),
                      "baseline_tfidf_subset_accuracy": accuracy_score(y, p)}
    return out


def _lines(directory, split):
    import gzip

    with gzip.open(f"{directory}/{split}.jsonl.gz", "rt", encoding="utf-8") as f:
        return [line for line in f.read().splitlines() if line.strip()]
