"""Text classification: `classification` (one label per text) and `multilabel` (a set of labels per text).

Both run any registered encoder, then `model.pooling`, then one linear layer
(research/models/classifier.py) on labelled JSONL (research/data/labels.py:
the reader, the label vocabulary from the training split, saved in the run's
tokenizer/). What each hook does differently from seq2seq:

  loss      single-label: softmax cross-entropy (trainer.label_smoothing as
            for tokens); multi-label: a sigmoid per label, binary
            cross-entropy summed over the labels (smoothing pulls each 0/1
            target towards 0.5 by half the amount). Either is averaged over
            examples: the step's `tokens` count examples here, and so do the
            `tokens` budget and tokens/s.
  predict   one forward pass per example, no decoding, every example of the
            split (trainer.eval_examples is a decoding limit; it does not
            apply). Single-label: the arg-max label. Multi-label: every label
            whose sigmoid is at least 0.5 (logit >= 0).
  metrics   scikit-learn's, as fractions in [0, 1]: accuracy and macro-F1
            (single-label); micro-F1, macro-F1 and subset accuracy (exact
            set match) for multi-label. Macro-F1 averages over the labels that
            occur in the split's gold labels or predictions (scikit-learn's own
            rule for single-label; the same columns are given to it for
            multi-label, so a label the split never mentions does not count 0).
  deciding  accuracy (classification), micro-F1 (multilabel): they select
            checkpoints (trainer.select_by=metric) and decide reports.
  files     hyps_<split>.txt holds one prediction per line: the label, or the
            JSON list of labels; eval_<split>.json the scores, and for
            single-label the confusion matrix (rows true, columns predicted,
            in `labels` order).
  images    single-label: the validation confusion matrix in TensorBoard at
            each evaluation (research/training/confusion_images.py).
  baseline  TF-IDF + logistic regression on the same training split
            (research/models/tfidf.py), scored on validation and test when
            the run starts: `baseline_tfidf_<metric>` in summary.json and
            eval_<split>.json; its predictions are kept in the run's
            baseline.json, so a report tests the best architecture against
            it as it tests summarization's leads. Fitting it on all of ddtp_sections_en takes
            minutes, so its scores are cached in `{data.tfds_dir}/baselines/`
            by the content of the three splits and the settings: the runs of
            a sweep fit it once.
  compare   paired bootstrap (1,000 resamples, seed 12345) over per-example
            correctness (accuracy) or per-example true/false positive and
            false negative counts (micro-F1).

Not supported, each refused with the key to change: packing (a row holds one
text), pretrained or frozen embeddings, ensembles.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from research import console
from research.analysis import significance
from research.data import labels as labelled
from research.data import tokenizer as tokenizers
from research.data.errors import DataError
from research.models import classifier, tfidf
from research.registry import ConfigError
from research.tasks import Task, refuse_seq2seq_options, register
from research.training import losses
from research.training.confusion_images import ConfusionImages, NoImages

log = logging.getLogger(__name__)
CACHE_LAYOUT = 2  # of the baseline cache files: 2 added the predictions (the report's paired test needs them)


# ---------------------------------------------------------------- data, tokenizer, model


def read(data_cfg, splits, *, multi: bool) -> dict:
    """A labelled JSONL corpus, or a tfds catalog dataset with a text and a ClassLabel field (imdb_reviews,
    glue/sst2)."""
    if data_cfg.format == "tfds":
        return labelled.load_catalog(data_cfg.tfds_name, data_cfg.source, data_cfg.target, tuple(splits),
                                     data_cfg.tfds_dir, multi)
    if data_cfg.format != "jsonl":
        raise ConfigError(f"data.format: task={data_cfg.task} reads format=jsonl (a text field and a label field) "
                          f"or tfds (a catalog dataset), not {data_cfg.format}")
    return labelled.load_splits(str(data_cfg.dir), data_cfg.source, data_cfg.target, splits, data_cfg.tfds_dir,
                                data_cfg.name, multi)


def tokenizer(tokenizer_cfg, pairs: list, fingerprint: str, *, multi: bool) -> labelled.LabelledTokenizer:
    """SentencePiece on the texts alone (one model, whatever tokenizer.joint says: there is no second text
    side) and the label vocabulary of the training split."""
    text = tokenizers.load_or_train(dataclasses.replace(tokenizer_cfg, joint=True), [(s,) for s, _ in pairs], fingerprint)
    return labelled.LabelledTokenizer(text, labelled.Labels.from_targets([t for _, t in pairs], multi))


def check_split(tok, examples, split: str, data_cfg) -> None:
    """Unseen labels of a validation or test split (an error naming them); a training example with more
    labels than a training row holds (data.max_target_len, labels plus EOS)."""
    if split != data_cfg.train_split:
        tok.labels.check(examples, split)
        return
    if tok.labels.multi:
        most = max((len(labelled.targets_of(t, True)) for _, t in _rows(examples)), default=0)
        if most + 1 > data_cfg.max_target_len:
            raise ConfigError(f"data.max_target_len: {data_cfg.max_target_len} holds {data_cfg.max_target_len - 1} "
                              f"labels plus EOS, but a training example has {most}; raise it to {most + 1}")


def _rows(examples) -> list[tuple[str, str]]:
    rows = examples.__getitems__(range(len(examples))) if hasattr(examples, "__getitems__") else list(examples)
    return [(r["source"], r["target"]) for r in rows]


def build_model(cfg, tok) -> tuple[classifier.Classifier, classifier.ClassifierArchitecture]:
    refuse_seq2seq_options(cfg)
    arch = classifier.architecture(cfg, tok.source_vocab, len(tok.labels), tok.labels.multi)
    return classifier.Classifier(arch), arch


def check_packing(arch) -> None:
    raise ConfigError("data.pack: a classifier pools each row into one prediction, so packed texts would share "
                      "one; set data.pack=false")


# ---------------------------------------------------------------- loss


def single_sums(logits, batch: dict, label_smoothing: float = 0.0) -> dict:
    """logits [B, L]; the label is target_out[:, 0] - OFFSET. Sums over the rows that hold an example."""
    weights = (batch["target_segments"][:, 0] > 0).astype(jnp.float32)  # [B]
    gold = jnp.maximum(batch["target_out"][:, 0] - labelled.OFFSET, 0)  # [B]; an empty row's counts for nothing
    loss, nll = losses.cross_entropy(logits[:, None], gold[:, None], weights[:, None], label_smoothing)
    correct = losses.top1(logits[:, None], gold[:, None])[:, 0] * weights
    return {"loss": loss.sum(), "nll": nll.sum(), "correct": correct.sum(), "tokens": weights.sum()}


def multi_hot(batch: dict, n: int):
    """[B, L] 1.0 at each row's labels: target_out [B, T] holds label ids + OFFSET, then EOS and padding."""
    ids = jnp.where(batch["target_segments"] > 0, batch["target_out"] - labelled.OFFSET, -1)  # EOS -> -1, pads -1
    return jax.nn.one_hot(ids, n, dtype=jnp.float32).max(1)  # one_hot of a negative id is all zeros


def multi_sums(logits, batch: dict, label_smoothing: float = 0.0) -> dict:
    """logits [B, L]; binary cross-entropy summed over labels per example; `correct`: the exact label set."""
    weights = (batch["target_segments"][:, 0] > 0).astype(jnp.float32)
    gold = multi_hot(batch, logits.shape[-1])
    smooth = gold * (1.0 - label_smoothing) + 0.5 * label_smoothing
    loss = optax.sigmoid_binary_cross_entropy(logits, smooth).sum(-1) * weights
    nll = optax.sigmoid_binary_cross_entropy(logits, gold).sum(-1) * weights
    correct = jnp.all((logits >= 0) == (gold > 0), axis=-1).astype(jnp.float32) * weights
    return {"loss": loss.sum(), "nll": nll.sum(), "correct": correct.sum(), "tokens": weights.sum()}


def predictor(sums):
    """The predictor hook for a loss: jitted (params, batch) -> (sums without smoothing, logits [B, L])."""
    def make(model, decode_cfg):
        del decode_cfg  # nothing is decoded

        def predict(params, batch):
            logits = model.apply({"params": params}, batch, deterministic=True)
            return sums(logits, batch, 0.0), logits

        return jax.jit(predict)

    return make


# ---------------------------------------------------------------- scores (scikit-learn)


def single_scores(hyps: list[str], refs: list[str], data=None) -> dict:
    """Accuracy and macro-F1 of predicted labels against the gold ones."""
    from sklearn.metrics import accuracy_score, f1_score  # noqa: PLC0415

    return {"accuracy": float(accuracy_score(refs, hyps)),
            "macro_f1": float(f1_score(refs, hyps, average="macro", zero_division=0))}


def indicators(hyps: list[str], refs: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(gold [N, K], predicted [N, K] 0/1, the K labels either mentions, sorted) of JSON label lists."""
    from sklearn.preprocessing import MultiLabelBinarizer  # noqa: PLC0415

    gold, pred = [json.loads(r) for r in refs], [json.loads(h) for h in hyps]
    classes = sorted(set().union(*gold, *pred))
    binarizer = MultiLabelBinarizer(classes=classes).fit([])
    return binarizer.transform(gold), binarizer.transform(pred), classes


def multi_scores(hyps: list[str], refs: list[str], data=None) -> dict:
    """Micro- and macro-F1 and subset accuracy of predicted label sets (JSON lists) against the gold ones."""
    from sklearn.metrics import accuracy_score, f1_score  # noqa: PLC0415

    gold, pred, classes = indicators(hyps, refs)
    if not classes:  # no label anywhere: every (empty) prediction is right, and there is nothing to F-score
        return {"micro_f1": 0.0, "macro_f1": 0.0, "subset_accuracy": 1.0}
    return {"micro_f1": float(f1_score(gold, pred, average="micro", zero_division=0)),
            "macro_f1": float(f1_score(gold, pred, average="macro", zero_division=0)),
            "subset_accuracy": float(accuracy_score(gold, pred))}


def confusion(hyps: list[str], refs: list[str], names) -> list[list[int]]:
    from sklearn.metrics import confusion_matrix  # noqa: PLC0415

    return confusion_matrix(refs, hyps, labels=list(names)).tolist()


# ---------------------------------------------------------------- evaluating a split


def _decide(logits: np.ndarray, names, multi: bool) -> tuple[list[str], np.ndarray, np.ndarray]:
    """logits [N, L] -> (predictions as targets, confidence [N], log-probability of the decision [N])."""
    if not multi:
        logp = np.asarray(jax.nn.log_softmax(jnp.asarray(logits), -1))
        best = logp.argmax(-1)
        chosen = logp[np.arange(len(best)), best]
        return [names[k] for k in best], np.exp(chosen), chosen
    on = logits >= 0  # sigmoid >= 0.5
    logp = np.asarray(jnp.where(on, jax.nn.log_sigmoid(logits), jax.nn.log_sigmoid(-logits)))  # each label's decision
    hyps = [json.dumps([names[k] for k in np.flatnonzero(row)], ensure_ascii=False) for row in on]
    return hyps, np.exp(logp).mean(-1), logp.sum(-1)


def evaluate_split(examples, tok, data_cfg, params, eval_fn, predict_fn, *, decode_examples: int = 0, shapes=None,
                   description: str = "predicting", split: str = "", score=None):
    """Scores `params` on every example of `examples` (the evaluate_split hook; see the module docstring).

    `eval_fn` is not called: `predict_fn` gives the loss sums with the logits, in one pass.
    Returns training.evaluation.SplitScores; the metrics hold the loss (mean per-example
    cross-entropy), `truncated_to_model` and the scores, for single-label also the confusion matrix.
    """
    from research.data import corpus  # noqa: PLC0415 (the data layer imports research.tasks)
    from research.decoding.corpus import Output  # noqa: PLC0415
    from research.training import evaluation  # noqa: PLC0415

    del eval_fn, decode_examples
    names, multi = tok.labels.names, tok.labels.multi
    tok.labels.check(examples, split or "evaluated")
    limits = evaluation.model_limits(params)
    batches = corpus.eval_batches(examples, tok, data_cfg, shapes, limits)
    n = len(examples)
    logits = np.zeros((n, len(names)), np.float32)
    totals = {"loss": 0.0, "tokens": 0.0}
    with console.progress(n, description or "", "examples", enabled=bool(description) and jax.process_index() == 0) as bar:
        for batch in batches:
            sums, out = jax.device_get(predict_fn(params, batch))
            for k in totals:
                totals[k] += float(sums[k])
            index = np.asarray(batch["index"])
            logits[index[index >= 0]] = np.asarray(out)[index >= 0]
            bar.update(int((index >= 0).sum()))
    cut = batches.stats.truncated
    if cut:
        log.warning("%d of %d texts are longer than the model's learned positions (%s pieces, EOS included) and were "
                    "cut to them; the results count them as truncated_to_model", cut, n, limits[0])
    rows = examples.__getitems__(range(n)) if hasattr(examples, "__getitems__") else [examples[i] for i in range(n)]
    refs, sources = [r["target"] for r in rows], [r["source"] for r in rows]
    hyps, confidence, log_prob = _decide(logits, names, multi)
    metrics = {"loss": totals["loss"] / max(totals["tokens"], 1.0), "truncated_to_model": cut, **score(hyps, refs)}
    if not multi:
        metrics.update(labels=list(names), confusion_matrix=confusion(hyps, refs, names))
    outputs = [[Output(text=h, score=float(c), log_prob=float(p), length=1)]
               for h, c, p in zip(hyps, confidence, log_prob)]
    return evaluation.SplitScores(metrics, outputs, hyps, refs, sources)


# ---------------------------------------------------------------- comparing systems


def accuracy_test(baseline, systems: dict, refs, seed: int = significance.SEED) -> dict:
    """Bootstrap p-values of each system against `baseline` on accuracy: {name: {"accuracy_bootstrap"}}."""
    correct = lambda hyps: np.array([h == r for h, r in zip(hyps, refs)], np.float64)
    base = correct(baseline)
    return {name: {"accuracy_bootstrap": 1.0 if list(h) == list(baseline) else
                   significance.paired_bootstrap(base, correct(h), seed=seed)} for name, h in systems.items()}


def micro_f1_test(baseline, systems: dict, refs, seed: int = significance.SEED,
                  samples: int = significance.BOOTSTRAP_SAMPLES) -> dict:
    """Bootstrap p-values on micro-F1 (significance.py's procedure, resampling examples' TP/FP/FN counts)."""
    def counts(hyps) -> np.ndarray:  # [N, 3]: per example, true positives, false positives, false negatives
        out = []
        for h, r in zip(hyps, refs):
            pred, gold = set(json.loads(h)), set(json.loads(r))
            out.append((len(pred & gold), len(pred - gold), len(gold - pred)))
        return np.array(out, np.float64).reshape(-1, 3)

    idx = np.random.default_rng(seed).choice(len(refs), size=(samples, len(refs)), replace=True)
    f1 = lambda c: 2 * c[..., 0] / np.maximum(2 * c[..., 0] + c[..., 1] + c[..., 2], 1.0)
    base = counts(baseline)
    out = {}
    for name, hyps in systems.items():
        if list(hyps) == list(baseline):
            out[name] = {"micro_f1_bootstrap": 1.0}
            continue
        other = counts(hyps)
        diffs = np.abs(f1(base[idx].sum(1)) - f1(other[idx].sum(1)))
        observed = abs(f1(base.sum(0)) - f1(other.sum(0)))
        out[name] = {"micro_f1_bootstrap": float((np.sum(diffs - diffs.mean() > observed) + 1) / (samples + 1))}
    return out


# ---------------------------------------------------------------- the baseline


def baseline(cfg, corpus, *, score) -> dict:
    """TF-IDF + logistic regression fitted on the run's training split, scored on validation and test
    (research/models/tfidf.py); -> {"scores": {split: {"baseline_tfidf_<score>": value}}, "hyps": {split:
    {"tfidf": its predictions, one a line as hyps_<split>.txt holds them}}}, from the cache when the same
    splits and settings were scored before. A test split that cannot be read is left out with a warning
    (an error later only if the run is tested); one with labels training never saw is an error now."""
    from sklearn import __version__ as sklearn_version  # noqa: PLC0415

    from research.data import corpus as corpora  # noqa: PLC0415
    from research.data.lock import exclusive, lock_path  # noqa: PLC0415

    d, multi = cfg.data, corpus.tokenizer.labels.multi
    splits = {d.valid_split: corpus.valid}
    try:
        splits.update(corpora.load(d, (d.test_split,)))
    except DataError as e:
        log.warning("baseline: not scored on %s: %s", d.test_split, e)
    rows = {name: _rows(examples) for name, examples in splits.items()}
    for name, examples in splits.items():
        corpus.tokenizer.labels.check(examples, name)
    train = _rows(corpus.train)
    key = hashlib.sha256(json.dumps([CACHE_LAYOUT, multi, tfidf.VECTORIZER, tfidf.C, tfidf.MAX_ITER, sklearn_version,
                                     corpora.fingerprint(train), {n: corpora.fingerprint(r) for n, r in rows.items()}],
                                    sort_keys=True).encode()).hexdigest()[:16]
    folder = os.path.join(os.path.expanduser(d.tfds_dir), "baselines")
    path = os.path.join(folder, f"tfidf-{key}.json")
    with exclusive(lock_path(folder, f"tfidf-{key}")):  # the jobs of a sweep wait for the first one's fit
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                out = json.load(f)
            log.info("baseline (TF-IDF + logistic regression): reusing %s", path)
            return out
        start = time.time()
        model = tfidf.fit([s for s, _ in train], [labelled.targets_of(t, multi) if multi else t for _, t in train], multi)
        out = {"scores": {}, "hyps": {}}
        for name, examples in rows.items():
            predicted = model.predict([s for s, _ in examples])
            hyps = [json.dumps(p, ensure_ascii=False) for p in predicted] if multi else [str(p) for p in predicted]
            out["scores"][name] = {f"baseline_tfidf_{k}": v for k, v in score(hyps, [t for _, t in examples]).items()}
            out["hyps"][name] = {"tfidf": hyps}
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=2)
        os.replace(tmp, path)
    log.info("baseline (TF-IDF + logistic regression, fitted in %.0f s): %s", time.time() - start,
             "; ".join(f"{s} " + " ".join(f"{k[15:]} {v:.4f}" for k, v in m.items()) for s, m in out["scores"].items()))
    return out


def _task(name: str, metric: str, multi: bool) -> Task:
    sums = multi_sums if multi else single_sums
    score = multi_scores if multi else single_scores
    return Task(
        name=name, metric=metric, score=score,
        paired_test=micro_f1_test if multi else accuracy_test,
        test_description="a paired bootstrap over examples (1,000 resamples, seed 12345) of "
                         + ("micro-F1." if multi else "accuracy."),
        read=lambda data_cfg, splits: read(data_cfg, splits, multi=multi),
        tokenizer=lambda cfg, pairs, fp: tokenizer(cfg, pairs, fp, multi=multi),
        check_split=check_split,
        save_tokenizer=lambda tok, folder: tok.save(folder),
        load_tokenizer=labelled.LabelledTokenizer.from_folder,
        build_model=build_model, check_packing=check_packing, train_flops=classifier.train_flops,
        sums=sums, predictor=predictor(sums),
        evaluate_split=lambda *a, **k: evaluate_split(*a, **k, score=score),
        images=lambda model, tok, examples, data_cfg, n: NoImages() if multi else ConfusionImages(tok.labels.names),
        fitted_baseline=lambda cfg, corpus: baseline(cfg, corpus, score=score),
        ensembles=False,
    )


TASK = register(_task("classification", "accuracy", multi=False))
MULTILABEL = register(_task("multilabel", "micro_f1", multi=True))
