"""Token tagging: `tagging` (plain tag sets, each tag scored by itself) and `span_tagging` (BIO/BIOES spans).

Both run any registered encoder, then each word's first piece and one
linear layer (research/models/tagger.py), on tagged sentences
(research/data/tagged.py: JSONL with word and tag lists, a tfds catalog
dataset such as conll2003; research/data/conll.py: CoNLL-2003 columns,
CoNLL-U, SRL props with a predicate indicator). Two tasks, not one with a
switch, because a task has one deciding metric (`Task.metric`: it selects
checkpoints, and the report finds the task by it): which of the two fits is
a property of the data, so each data config names its task.

  loss      softmax cross-entropy per word (trainer.label_smoothing as for
            tokens) at each word's first piece, averaged over the real words
            of the batch: the step's `tokens` count words here, and so do
            the `tokens` budget and tokens/s.
  predict   one forward pass per sentence, the arg-max tag of every word; a
            word the model cannot see (its first piece past the learned
            positions) gets the vocabulary's fallback tag (O, else the most
            frequent) and is counted in `truncated_words`.
  metrics   tagging: per-tag F1 (`f1_<tag>`) and macro-F1 over the tags other
            than O that the split's gold tags or predictions hold
            (scikit-learn's rule, as for classification), and word accuracy.
            span_tagging: seqeval's span F1, precision and recall (micro
            over spans, its default conlleval-compatible mode, so an I- that
            follows no B- starts a span and BIO, IOB1 and BIOES all read),
            per-type F1 (`f1_<type>`) and word accuracy. Fractions in [0, 1].
  deciding  macro_f1 (tagging), span_f1 (span_tagging).
  files     hyps_<split>.txt holds the predicted tags of each sentence, space-
            separated, one sentence a line, as the references are;
            eval_<split>.json the scores and the word-level confusion matrix
            (rows true, columns predicted, in `labels` order).
  images    the validation confusion matrix of tags at each evaluation
            (research/training/confusion_images.py).
  baseline  each word's most frequent training tag in its context
            (research/models/tag_lookup.py), fitted when the run starts:
            `baseline_lookup_<metric>` in summary.json and eval_<split>.json,
            its predictions in baseline.json for the report's paired test.
  compare   paired bootstrap over sentences (1,000 resamples, seed 12345)
            of the deciding F1, recomputed from each resample's summed counts
            (per-tag true/false positives and false negatives; spans' for
            span_tagging).

Not supported, each refused with the key to change: packing (word numbers
restart in every sentence), pretrained or frozen embeddings, ensembles.
"""
from __future__ import annotations

import dataclasses
import itertools
import logging

import jax
import jax.numpy as jnp
import numpy as np

from research import console
from research.analysis import significance
from research.data import conll, tagged, tags
from research.data import tokenizer as tokenizers
from research.models import tag_lookup, tagger
from research.registry import ConfigError
from research.tasks import Task, refuse_seq2seq_options, register
from research.tasks.classification import predictor as forward_predictor
from research.training import losses
from research.training.confusion_images import ConfusionImages

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- data, tokenizer, model


def read(data_cfg, splits) -> dict:
    """Tagged sentences of a local corpus (jsonl; tsv: CoNLL column files) or a tfds catalog dataset."""
    d = data_cfg
    if d.format == "jsonl":
        return tagged.load_prepared("jsonl", tagged.TaggedJsonl, str(d.dir), d.source, d.target, splits, d.tfds_dir, d.name)
    if d.format == "tsv":
        conll.layout(d.source, d.target)  # a ConfigError naming the key, before anything is prepared
        return tagged.load_prepared("tsv", conll.TaggedColumns, str(d.dir), d.source, d.target, splits, d.tfds_dir, d.name)
    if d.format == "tfds":
        return tagged.load_catalog(d.tfds_name, d.source or "tokens", d.target or "ner", tuple(splits), d.tfds_dir)
    raise ConfigError(f"data.format: task={d.task} reads jsonl (word and tag lists), tsv (CoNLL column files: "
                      f"research/data/conll.py) or tfds, not {d.format}")


def tokenizer(tokenizer_cfg, pairs: list, fingerprint: str, *, spans: bool) -> tags.TagTokenizer:
    """SentencePiece on the training sentences' words (each distinct sentence once: SRL repeats a sentence
    per predicate) and the tag vocabulary of the training split."""
    texts = list(dict.fromkeys(" ".join(tagged.parse_source(s)[0]) for s, _ in pairs))
    text = tokenizers.load_or_train(dataclasses.replace(tokenizer_cfg, joint=True), [(t,) for t in texts], fingerprint)
    return tags.TagTokenizer(text, tags.Tags.from_examples(pairs, spans))


def check_split(tok, examples, split: str, data_cfg) -> None:
    """Unseen tags (and predicates where training had none) of a validation or test split: an error naming them."""
    if split != data_cfg.train_split:
        tok.tags.check(examples, split)


def build_model(cfg, tok) -> tuple[tagger.Tagger, tagger.TaggerArchitecture]:
    refuse_seq2seq_options(cfg)
    arch = tagger.architecture(cfg, tok.source_vocab, len(tok.tags), tok.tags.predicate)
    return tagger.Tagger(arch), arch


def check_packing(arch) -> None:
    raise ConfigError("data.pack: a tagger numbers the words of each row from 1 (source_words), so packed sentences "
                      "would claim each other's word positions; set data.pack=false")


# ---------------------------------------------------------------- loss


def word_weights(batch: dict, words: int):
    """[B, T] 1.0 at the words the loss counts: a first piece in the row and a tag (not EOS, not padding)."""
    return tagger.words_present(batch["source_words"], words) * (batch["target_out"] >= tags.OFFSET)


def sums(logits, batch: dict, label_smoothing: float = 0.0) -> dict:
    """logits [B, T, K]; word j's tag is target_out[:, j] - OFFSET. Sums over the real words."""
    weights = word_weights(batch, logits.shape[1])
    gold = jnp.maximum(batch["target_out"] - tags.OFFSET, 0)  # EOS and pads: weight 0, any id will do
    loss, nll = losses.cross_entropy(logits, gold, weights, label_smoothing)
    correct = losses.top1(logits, gold) * weights
    return {"loss": loss.sum(), "nll": nll.sum(), "correct": correct.sum(), "tokens": weights.sum()}


# ---------------------------------------------------------------- scores (scikit-learn, seqeval)


def _sentences(hyps: list[str], refs: list[str]) -> tuple[list[list[str]], list[list[str]]]:
    pred, gold = [tagged.tags_of(h) for h in hyps], [tagged.tags_of(r) for r in refs]
    if len(pred) != len(gold):
        raise ValueError(f"{len(pred)} predicted sentences for {len(gold)} references")
    for i, (p, g) in enumerate(zip(pred, gold)):
        if len(p) != len(g):
            raise ValueError(f"sentence {i + 1}: {len(p)} predicted tags for {len(g)} words")
    return pred, gold


def _flat(hyps: list[str], refs: list[str]) -> tuple[list[str], list[str]]:
    """(predicted, gold) tags of every word, sentence after sentence."""
    pred, gold = _sentences(hyps, refs)
    return list(itertools.chain.from_iterable(pred)), list(itertools.chain.from_iterable(gold))


def scored_tags(gold: list[str], pred: list[str]) -> list[str]:
    """The tags macro-F1 averages over: those of the gold tags or predictions, O aside, sorted."""
    return sorted((set(gold) | set(pred)) - {tags.OUTSIDE})


def plain_scores(hyps: list[str], refs: list[str], data=None) -> dict:
    """Per-tag F1, macro-F1 over the non-O tags (see the module docstring) and word accuracy."""
    from sklearn.metrics import accuracy_score, f1_score  # noqa: PLC0415

    pred, gold = _flat(hyps, refs)
    names = scored_tags(gold, pred)
    out = {"macro_f1": float(f1_score(gold, pred, labels=names, average="macro", zero_division=0)) if names else 0.0,
           "accuracy": float(accuracy_score(gold, pred))}
    if names:
        out.update({f"f1_{n}": float(f) for n, f in zip(names, f1_score(gold, pred, labels=names, average=None,
                                                                          zero_division=0))})
    return out


def span_scores(hyps: list[str], refs: list[str], data=None) -> dict:
    """seqeval's span F1, precision and recall (default mode), its per-type F1, and word accuracy."""
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score  # noqa: PLC0415
    from seqeval.metrics.sequence_labeling import get_entities  # noqa: PLC0415

    pred, gold = _sentences(hyps, refs)
    flat = [(g, p) for gs, ps in zip(gold, pred) for g, p in zip(gs, ps)]
    out = {"span_f1": float(f1_score(gold, pred, zero_division=0)),
           "span_precision": float(precision_score(gold, pred, zero_division=0)),
           "span_recall": float(recall_score(gold, pred, zero_division=0)),
           "accuracy": sum(g == p for g, p in flat) / max(len(flat), 1)}
    if not (get_entities(gold) or get_entities(pred)):
        return out  # no span anywhere: no type to report (seqeval's report would average an empty table)
    report = classification_report(gold, pred, output_dict=True, zero_division=0)
    out.update({f"f1_{kind}": float(v["f1-score"]) for kind, v in report.items() if not kind.endswith(" avg")})
    return out


def confusion(gold: list[str], pred: list[str], names) -> list[list[int]]:
    from sklearn.metrics import confusion_matrix  # noqa: PLC0415

    return confusion_matrix(gold, pred, labels=list(names)).tolist()


# ---------------------------------------------------------------- comparing systems


def tag_counts(hyps, refs, names: list[str]) -> np.ndarray:
    """[N, K, 3] per sentence and tag of `names`: true positives, false positives, false negatives."""
    index = {n: k for k, n in enumerate(names)}
    out = np.zeros((len(refs), len(names), 3))
    for i, (p, g) in enumerate(zip(*_sentences(hyps, refs))):
        for a, b in zip(g, p):
            if a == b and a in index:
                out[i, index[a], 0] += 1
            elif a != b:
                if b in index:
                    out[i, index[b], 1] += 1
                if a in index:
                    out[i, index[a], 2] += 1
    return out


def span_counts(hyps, refs) -> np.ndarray:
    """[N, 1, 3] per sentence: spans right, predicted but wrong, gold but missed (seqeval's spans)."""
    from seqeval.metrics.sequence_labeling import get_entities  # noqa: PLC0415

    out = np.zeros((len(refs), 1, 3))
    for i, (p, g) in enumerate(zip(*_sentences(hyps, refs))):
        pred, gold = set(get_entities(p)), set(get_entities(g))
        out[i, 0] = len(pred & gold), len(pred - gold), len(gold - pred)
    return out


def macro_f1_of(counts: np.ndarray) -> np.ndarray:
    """[..., K, 3] summed counts -> [...] the mean F1 over the tags with any count (scikit-learn's labels)."""
    tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 2]
    seen = (2 * tp + fp + fn) > 0
    f1 = np.where(seen, 2 * tp / np.maximum(2 * tp + fp + fn, 1.0), 0.0)
    return f1.sum(-1) / np.maximum(seen.sum(-1), 1)


def paired_bootstrap_f1(base: np.ndarray, other: np.ndarray, seed: int = significance.SEED,
                        samples: int = significance.BOOTSTRAP_SAMPLES) -> float:
    """p-value of the difference in macro_f1_of summed counts [N, K, 3] of two systems: significance.py's
    procedure (resample sentences with replacement, centre the differences, count those beyond the observed)."""
    n = len(base)
    idx = np.random.default_rng(seed).choice(n, size=(samples, n), replace=True)
    weights = np.zeros((samples, n))
    np.add.at(weights, (np.arange(samples)[:, None], idx), 1.0)  # how often each sentence is in each resample
    resampled = lambda c: macro_f1_of(np.einsum("sn,nkc->skc", weights, c))
    diffs = np.abs(resampled(base) - resampled(other))
    observed = abs(macro_f1_of(base.sum(0)) - macro_f1_of(other.sum(0)))
    return float((np.sum(diffs - diffs.mean() > observed) + 1) / (samples + 1))


def f1_test(key: str, counts):
    """The paired_test hook for one deciding F1: (baseline, {name: hyps}, refs) -> {name: {key: p-value}}."""
    def test(baseline, systems: dict, refs, seed: int = significance.SEED) -> dict:
        base = counts(baseline, refs)
        return {name: {key: 1.0 if list(h) == list(baseline) else paired_bootstrap_f1(base, counts(h, refs), seed)}
                for name, h in systems.items()}

    return test


def plain_counts(hyps, refs) -> np.ndarray:
    """tag_counts over the tags this system's macro-F1 averages (`scored_tags`)."""
    pred, gold = _flat(hyps, refs)
    return tag_counts(hyps, refs, scored_tags(gold, pred))


# ---------------------------------------------------------------- the baseline


def baseline(cfg, corpus, *, score, metric: str) -> dict:
    """The lookup baseline fitted on the run's training split and scored on validation and test ->
    {"scores": {split: {"baseline_lookup_<score>": value}}, "hyps": {split: {"lookup": tags, one sentence a line}}}.
    A test split that cannot be read is left out with a warning (an error later only if the run is tested);
    one with tags training never saw is an error now, as for the network."""
    from research.data import corpus as corpora  # noqa: PLC0415 (the data layer imports research.tasks)
    from research.data.errors import DataError  # noqa: PLC0415

    d = cfg.data
    splits = {d.valid_split: corpus.valid}
    try:
        splits.update(corpora.load(d, (d.test_split,)))
    except DataError as e:
        log.warning("baseline: not scored on %s: %s", d.test_split, e)
    for name, examples in splits.items():
        corpus.tokenizer.tags.check(examples, name)
    sentence = lambda row: (tagged.parse_source(row[0])[0], tagged.tags_of(row[1]))
    model = tag_lookup.fit([sentence(r) for r in corpora.pairs(corpus.train)], corpus.tokenizer.tags.fallback)
    out: dict = {"scores": {}, "hyps": {}}
    for name, examples in splits.items():
        rows = corpora.pairs(examples)
        hyps = [" ".join(model.tag(tagged.parse_source(s)[0])) for s, _ in rows]
        out["scores"][name] = {f"baseline_lookup_{k}": v for k, v in score(hyps, [t for _, t in rows]).items()}
        out["hyps"][name] = {"lookup": hyps}
    log.info("baseline (most frequent tag in context): %s", "; ".join(
        f"{s} {metric} {m[f'baseline_lookup_{metric}']:.4f}" for s, m in out["scores"].items()))
    return out


# ---------------------------------------------------------------- evaluating a split


def evaluate_split(examples, tok, data_cfg, params, eval_fn, predict_fn, *, decode_examples: int = 0, shapes=None,
                   description: str = "tagging", split: str = "", score=None):
    """Scores `params` on every sentence of `examples` (the evaluate_split hook; see the module docstring).

    `eval_fn` is not called: `predict_fn` gives the loss sums with the logits, in one pass.
    Returns training.evaluation.SplitScores; the metrics hold the loss (mean per-word cross-entropy),
    `truncated_to_model`, `truncated_words`, the scores and the word-level confusion matrix.
    """
    from research.data import corpus  # noqa: PLC0415 (the data layer imports research.tasks)
    from research.decoding.corpus import Output  # noqa: PLC0415
    from research.training import evaluation  # noqa: PLC0415

    del eval_fn, decode_examples
    names, fallback = tok.tags.names, tok.tags.fallback
    tok.tags.check(examples, split or "evaluated")
    limits = evaluation.model_limits(params)
    batches = corpus.eval_batches(examples, tok, data_cfg, shapes, limits)
    n = len(examples)
    rows = examples.__getitems__(range(n)) if hasattr(examples, "__getitems__") else [examples[i] for i in range(n)]
    refs = [r["target"] for r in rows]
    outputs: list = [None] * n
    totals, unseen = {"loss": 0.0, "tokens": 0.0}, 0
    with console.progress(n, description or "", "sentences", enabled=bool(description) and jax.process_index() == 0) as bar:
        for batch in batches:
            sums_, logits = jax.device_get(predict_fn(params, batch))
            for k in totals:
                totals[k] += float(sums_[k])
            logp = np.asarray(jax.nn.log_softmax(jnp.asarray(logits), -1))  # [B, T, K]
            present = np.asarray(tagger.words_present(jnp.asarray(batch["source_words"]), logp.shape[1])) > 0
            for row, i in enumerate(np.asarray(batch["index"])):
                if i < 0:
                    continue
                m = len(tagged.tags_of(refs[i]))
                best = logp[row, :m].argmax(-1)
                seen = present[row, :m]
                unseen += int((~seen).sum())
                chosen = logp[row, np.arange(m), best][seen]
                predicted = " ".join(names[k] if s else fallback for k, s in zip(best, seen))
                outputs[i] = [Output(text=predicted, score=float(np.exp(chosen).mean()) if len(chosen) else 0.0,
                                     log_prob=float(chosen.sum()), length=m)]
            bar.update(int((np.asarray(batch["index"]) >= 0).sum()))
    cut = batches.stats.truncated
    if cut:
        log.warning("%d of %d sentences are longer than the model's learned positions (%s pieces, EOS included); "
                    "their %d words past it get the tag %r, counted as truncated_words", cut, n, limits[0], unseen,
                    fallback)
    hyps = [o[0].text for o in outputs]
    pred, gold = _flat(hyps, refs)
    metrics = {"loss": totals["loss"] / max(totals["tokens"], 1.0), "truncated_to_model": cut,
               "truncated_words": unseen, **score(hyps, refs), "labels": list(names),
               "confusion_matrix": confusion(gold, pred, names)}
    return evaluation.SplitScores(metrics, outputs, hyps, refs, [tagged.readable(r["source"]) for r in rows])


# ---------------------------------------------------------------- the two tasks


def _task(name: str, metric: str, spans: bool) -> Task:
    score = span_scores if spans else plain_scores
    return Task(
        name=name, metric=metric, score=score,
        paired_test=f1_test(f"{metric}_bootstrap", span_counts if spans else plain_counts),
        test_description="a paired bootstrap over sentences (1,000 resamples, seed 12345) of "
                         + ("span F1." if spans else "macro-F1 over the non-O tags."),
        read=read,
        tokenizer=lambda cfg, pairs, fp: tokenizer(cfg, pairs, fp, spans=spans),
        check_split=check_split,
        save_tokenizer=lambda tok, folder: tok.save(folder),
        load_tokenizer=tags.TagTokenizer.from_folder,
        build_model=build_model, check_packing=check_packing, train_flops=tagger.train_flops,
        sums=sums, predictor=forward_predictor(sums),
        evaluate_split=lambda *a, **k: evaluate_split(*a, **k, score=score),
        images=lambda model, tok, examples, data_cfg, n: ConfusionImages(tok.tags.names),
        fitted_baseline=lambda cfg, corpus: baseline(cfg, corpus, score=score, metric=metric),
        ensembles=False,
    )


TAGGING = register(_task("tagging", "macro_f1", spans=False))
SPAN_TAGGING = register(_task("span_tagging", "span_f1", spans=True))
