"""The classifier (research/models/classifier.py) with every encoder and pooling learns on real batches."""
from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research import tasks
from research.data import labels as labelled
from research.data.batch import pad_batch
from research.models.layers.pooling import POOLINGS
from tests.helpers.classification import batches, run_config, sample_corpus, trainer
from tests.helpers.marks import slow_after

ENCODERS = ("rnn", "cnn", "transformer")
STEPS = 8


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    return sample_corpus(tmp_path_factory.mktemp("cls"))


def _loss_falls(cfg, corpus, trained: list | None = None) -> list[float]:
    """Training losses of STEPS updates that alternate between the first two real training batches
    (`trained`, if given, receives the model and the final parameters)."""
    model, init, step = trainer(cfg, corpus.tokenizer)
    data = batches(cfg, corpus, 2)
    state, losses = init(data[0]), []
    for i in range(STEPS):
        state, metrics = step(state, data[i % 2])
        assert float(metrics["skipped"]) == 0.0
        losses.append(float(metrics["loss"]))  # the loss before this update
    assert all(np.isfinite(losses))
    if trained is not None:
        trained += [model, state.params]
    return losses


# The first two in `make test`; every encoder and every pooling once with the rest of the 12 (2.5 minutes,
# 2026-12-02) in test-slow.
EACH_ONCE = [("rnn", "attention"), ("cnn", "max"), ("transformer", "first"), ("rnn", "mean")]


@pytest.mark.parametrize("encoder,pooling", slow_after(2, EACH_ONCE + [(e, p) for e in ENCODERS for p in POOLINGS
                                                                   if (e, p) not in EACH_ONCE]))
def test_every_encoder_and_pooling_builds_and_its_loss_falls(texts, tmp_path, encoder, pooling):
    losses = _loss_falls(run_config(encoder, tmp_path, f"model.pooling={pooling}"), texts)
    assert losses[-2] < losses[0] - 0.05, losses  # the first batch again, after 6 updates


def test_multilabel_loss_falls_and_its_split_scores_are_its_predictions(tmp_path_factory, tmp_path):
    """Learned positions of 32 cut every validation text to the training rows' width: one shape to compile."""
    tags = sample_corpus(tmp_path_factory.mktemp("tags"), task="multilabel")
    assert tags.tokenizer.labels.multi and len(tags.tokenizer.labels) > 200
    cfg = run_config("transformer", tmp_path, "model.pooling=attention", "encoder.positions=learned",
                     "encoder.max_len=32", task="multilabel")
    trained: list = []
    losses = _loss_falls(cfg, tags, trained)
    assert losses[-2] < 0.9 * losses[0], losses  # summed over the tags' sigmoids: most head for "absent" at once
    task = tasks.get("multilabel")
    model, params = trained
    scores = task.evaluate_split(tags.valid, tags.tokenizer, cfg.data, params, None, task.predictor(model, cfg.decode),
                                 description="", split="validation")
    assert len(scores.hyps) == len(tags.valid) == 100
    assert all(set(json.loads(h)) <= set(tags.tokenizer.labels.names) for h in scores.hyps)
    assert scores.refs == [tags.valid[i]["target"] for i in range(100)]
    assert {k: scores.metrics[k] for k in ("micro_f1", "macro_f1", "subset_accuracy")} == task.score(
        scores.hyps, scores.refs, None)
    assert scores.metrics["truncated_to_model"] > 0 and np.isfinite(scores.metrics["loss"])
    assert "confusion_matrix" not in scores.metrics


def test_a_small_model_overfits_64_examples(texts, tmp_path):
    """64 real texts (first 63 pieces each) and their sections in one batch: 100% training accuracy."""
    cfg = run_config("cnn", tmp_path, "model.d_model=32", "encoder.channels=32", "optim.learning_rate=0.01")
    tok = texts.tokenizer
    rows = [texts.train[i] for i in range(64)]
    src = [tok.encode_source(r["source"])[:63] for r in rows]
    tgt = [tok.encode_target(r["target"]) for r in rows]
    batch = {k: jnp.asarray(v) for k, v in pad_batch(src, tgt, 64, 2).items()}
    model, init, step = trainer(cfg, tok)
    state = init(batch)
    for _ in range(150):
        state, metrics = step(state, batch)
        if float(metrics["accuracy"]) == 1.0:
            break
    logits = model.apply({"params": state.params}, batch)
    predicted = np.asarray(jnp.argmax(logits, -1))
    gold = np.array([tok.labels.index[r["target"]] for r in rows])
    assert (predicted == gold).all(), f"{(predicted == gold).mean():.2%} after training"
    assert len(set(gold)) > 10  # many classes, not one majority label
    assert (np.asarray(batch["target_out"][:, 0]) == gold + labelled.OFFSET).all()  # label ids past the specials


def test_classifier_records_its_architecture_without_a_decoder(texts, tmp_path):
    cfg = run_config("transformer", tmp_path, "model.pooling=attention")
    model, arch = tasks.get("classification").build_model(cfg, texts.tokenizer)
    meta = arch.meta()
    assert meta["kind"] == "classifier" and "decoder" not in meta
    assert meta["model"] == {"d_model": 16, "pooling": "attention"} and meta["labels"] == len(texts.tokenizer.labels)
    params = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), batches(cfg, texts, 1)[0])["params"])
    assert set(params) == {"source_embed", "encoder", "pooling", "classifier"}
    assert params["classifier"]["kernel"].shape == (16, len(texts.tokenizer.labels))


def test_packing_and_pretrained_embeddings_are_refused_naming_the_key(texts, tmp_path):
    from research.registry import ConfigError

    task = tasks.get("classification")
    _, arch = task.build_model(run_config("cnn", tmp_path), texts.tokenizer)
    with pytest.raises(ConfigError, match="data.pack: a classifier pools each row into one prediction"):
        task.check_packing(arch)
    frozen = run_config("cnn", tmp_path, "model.embeddings.freeze=true", "model.share_embeddings=false",
                        "model.embeddings.side=source")
    with pytest.raises(ConfigError, match="model.embeddings: pretrained or frozen embeddings are for seq2seq"):
        task.build_model(frozen, texts.tokenizer)
