"""The classification baseline: TF-IDF features and logistic regression (scikit-learn).

Trained on the run's own training split (the same examples the network
trains on, `data.max_train_examples` included) and scored on validation and
test by the task's own metrics, so a report shows at once whether a network
beats a linear model on word counts. Settings, fixed so that baselines of
different runs compare:

  TfidfVectorizer(lowercase=True, ngram_range=(1, 2), min_df=2, sublinear_tf=True, dtype=float32)
      words and word pairs (scikit-learn's default token pattern: runs of 2+
      word characters), seen in at least 2 training texts, tf replaced by
      1 + log(tf), idf smoothed, rows L2-normalised (the defaults);
  LogisticRegression(C=10.0, max_iter=1000)            single-label: multinomial, lbfgs;
  OneVsRestClassifier(LogisticRegression(C=10.0, solver="liblinear"))
      multi-label: one binary classifier per label of the training split,
      a label predicted where its probability is at least 0.5, as the network's.

C=10, weaker regularisation than scikit-learn's 1.0, was chosen once among
1, 10 and 100 on the validation split of the shipped sample (600 training
texts): C=1 gave accuracy 0.48 and, multi-label, no tag above 0.5 at all
(micro-F1 0); C=10 0.59 and 0.23; C=100 0.64 and 0.28, a small further gain
on 100 validation texts that did not seem worth moving further from the
default for. It is never tuned per run, nor on a test split, so the baseline
is the same plain model for every run and corpus. Fitting and predicting run
with one BLAS thread (threadpoolctl): the numbers then do not depend on the
machine's core count, and on a busy machine the threads only waited for
each other (a fit on the sample took 4.3 s of CPU with them, 0.9 s without).
On all of ddtp_sections_en (49k texts, 295k features) the single-label fit
took 325 s on one idle core (203 lbfgs iterations) and scored validation
accuracy 0.744, macro-F1 0.648; research/tasks/classification.py caches the
scores, so a sweep pays that once. The multi-label fit (596 binary models)
was not timed on the full corpus.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

VECTORIZER = dict(lowercase=True, ngram_range=(1, 2), min_df=2, sublinear_tf=True)
C = 10.0
MAX_ITER = 1000


@dataclasses.dataclass
class Baseline:
    """A fitted vectorizer and classifier; `predict` gives label names (single) or sets of them (multi)."""

    vectorizer: Any
    classifier: Any
    classes: np.ndarray  # label names in the classifier's column order
    multi: bool

    def predict(self, texts: Sequence[str]) -> list:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415

        x = self.vectorizer.transform(list(texts))
        with threadpool_limits(limits=1):
            if not self.multi:
                return list(self.classifier.predict(x))
            chosen = self.classifier.predict_proba(x) >= 0.5  # [N, L]
        return [sorted(self.classes[row].tolist()) for row in chosen]


def fit(texts: Sequence[str], labels: Sequence, multi: bool) -> Baseline:
    """Fits the baseline on training texts and their labels (a name each, or a list of names each)."""
    from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: PLC0415 (scikit-learn loads in ~1 s)
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415
    from sklearn.multiclass import OneVsRestClassifier  # noqa: PLC0415
    from sklearn.preprocessing import MultiLabelBinarizer  # noqa: PLC0415
    from threadpoolctl import threadpool_limits  # noqa: PLC0415 (installed with scikit-learn)

    vectorizer = TfidfVectorizer(**VECTORIZER, dtype=np.float32)
    x = vectorizer.fit_transform(list(texts))
    with threadpool_limits(limits=1):
        if not multi:
            classifier = LogisticRegression(C=C, max_iter=MAX_ITER).fit(x, list(labels))
            return Baseline(vectorizer, classifier, classifier.classes_, multi)
        binarizer = MultiLabelBinarizer().fit(labels)
        classifier = OneVsRestClassifier(LogisticRegression(C=C, solver="liblinear")).fit(x, binarizer.transform(labels))
    return Baseline(vectorizer, classifier, binarizer.classes_, multi)
