"""Evaluation never truncates: long examples get added batch shapes, and only the model's own limit cuts.

References are independent of the eval pipeline: ids from the tokenizer itself, and each
example decoded and scored alone in a batch of its own that fits it.
"""
from __future__ import annotations

import functools
import logging
from types import SimpleNamespace

import jax
import numpy as np
import pytest

from research.data import corpus
from research.data import pipeline as P
from research.data.planning import BatchShape, batch_size
from research.data.batch import EOS, pad_batch
from research.data.config import DataConfig
from research.decoding.corpus import SOURCE_KEYS
from research.decoding.generate import jit_generate_nbest
from research.training import evaluation
from research.training.steps import eval_step
from tests.helpers.models import build, real_pairs

CONFIG = P.PipelineConfig(tokens_per_batch=512, max_source_len=32, max_target_len=32, log_every=0)
TRAIN_SHAPES = (BatchShape(16, 16, 16), BatchShape(16, 24, 12))  # what a training iterator would pass


def words(text):
    """Word "w<k>" -> id k + 4 (above the special ids), so a batch row can be read back."""
    return [int(w[1:]) + 4 for w in text.split()]


def example(n_source, n_target, first=0):
    return {"source": " ".join(f"w{first + i}" for i in range(n_source)),
            "target": " ".join(f"w{first + 100 + i}" for i in range(n_target))}


# 4 short examples, two sources longer than every training shape and than max_source_len
# (50 and 60 pieces: one grid length, 64), one target longer than every training target.
SPLIT = [example(5, 4, 0), example(12, 10, 1), example(50, 6, 2), example(3, 2, 3),
         example(60, 40, 4), example(8, 30, 5), example(14, 11, 6)]


def rows(batches):
    """example index -> (its batch's (B, S, T), source ids without EOS, target ids), checking the row's ends."""
    out = {}
    for b in batches:
        for r, i in enumerate(b["index"]):
            if i < 0:
                continue
            n, m = int((b["source_segments"][r] > 0).sum()), int((b["target_segments"][r] > 0).sum())
            assert b["source"][r, n - 1] == EOS and b["target_out"][r, m - 1] == EOS
            out[int(i)] = ((b["source"].shape[0], b["source"].shape[1], b["target_in"].shape[1]),
                           list(b["source"][r, :n - 1]), list(b["target_out"][r, :m - 1]))
    return out


def test_long_examples_get_added_shapes_and_stay_whole(caplog):
    with caplog.at_level(logging.INFO, logger="research.data.pipeline"):
        it = P.eval_iterator(SPLIT, words, words, CONFIG, shapes=TRAIN_SHAPES)
    got = rows(list(it))
    assert it.stats.truncated == 0 and sorted(got) == list(range(len(SPLIT)))
    for i, ex in enumerate(SPLIT):
        shape, src, tgt = got[i]
        assert (src, tgt) == (words(ex["source"]), words(ex["target"]))  # whole, never cut
        assert shape in it.shapes and shape[1] >= len(src) + 1 and shape[2] >= len(tgt) + 1
    assert it.shapes[:2] == TRAIN_SHAPES  # the training compiles are reused first
    added = it.shapes[2:]
    # 50 and 60 pieces share the grid length 64 (one shape, T for the longer target); the 30-piece
    # target of a short source gets its own; B follows the token budget as in training.
    assert added == (BatchShape(batch_size(512, 16, 32), 16, 32), BatchShape(8, 64, 48))
    assert got[2][0] == got[4][0] == (8, 64, 48)
    assert "2 added so that no example is truncated" in caplog.text


def test_without_shapes_nothing_is_clipped_to_the_max_lengths():
    it = P.eval_iterator(SPLIT, words, words, CONFIG)
    got = rows(list(it))
    assert it.stats.truncated == 0
    assert got[4][1] == words(SPLIT[4]["source"]) and got[4][0][1] >= 61 > CONFIG.max_source_len
    assert all(x.source <= CONFIG.max_source_len for x in it.shapes[:-1])  # only the added one is longer


def test_model_limits_cut_and_count(caplog):
    with caplog.at_level(logging.INFO, logger="research.data.pipeline"):
        it = P.eval_iterator(SPLIT, words, words, CONFIG, shapes=TRAIN_SHAPES, limits=(40, 20))
    got = rows(list(it))
    over = [i for i, ex in enumerate(SPLIT) if len(words(ex["source"])) + 1 > 40 or len(words(ex["target"])) + 1 > 20]
    assert over == [2, 4, 5] and it.stats.truncated == 3
    assert "3 cut to the model's limits (40, 20)" in caplog.text
    for i, ex in enumerate(SPLIT):
        assert got[i][1:] == (words(ex["source"])[:39], words(ex["target"])[:19])


# ---------------------------------------------------------------- with a model

ENCODER_LIMIT, DECODER_LIMIT = 40, 48  # learned tables of the tiny model below
GIVEN = (BatchShape(16, 24, 24),)  # the "training shapes": shorter than two of the examples


def random_params(model, seed=0):
    """Untrained parameters without compiling an init: shapes from eval_shape, values from numpy."""
    abstract = jax.eval_shape(lambda r: model.init({"params": r}, pad_batch([[5]], [[5]], 8, 8))["params"],
                              jax.random.PRNGKey(0))
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda a: rng.normal(0.0, 0.3, a.shape).astype(a.dtype), abstract)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny model with learned positions on both sides (transformer encoder, CNN decoder)."""
    cfg, tok, model = build("transformer", "cnn", tmp_path_factory.mktemp("tiny"), "encoder.positions=learned",
                            f"encoder.max_len={ENCODER_LIMIT}", f"decoder.max_len={DECODER_LIMIT}")
    return cfg, tok, model, random_params(model)


def real_split(tok):
    """Real pairs: four that fit GIVEN, a "medium" one longer than GIVEN but within the model's
    tables (source 33..40 pieces: the same grid width, 48, as the cut "long" one), and a "long"
    one of 12 pairs joined, beyond both tables."""
    pairs = real_pairs(40, max_words=8)
    n = lambda ex: (len(tok.encode_source(ex["source"])) + 1, len(tok.encode_target(ex["target"])) + 1)
    examples = [{"source": a, "target": b} for a, b in pairs]
    short = [ex for ex in examples if max(n(ex)) <= 24][:4]
    medium = next(ex for ex in examples if 32 < n(ex)[0] <= ENCODER_LIMIT and n(ex)[1] <= DECODER_LIMIT)
    long = {"source": " ".join(a for a, _ in pairs[:12]), "target": " ".join(b for _, b in pairs[:12])}
    assert len(short) == 4 and n(long)[0] > ENCODER_LIMIT and n(long)[1] > DECODER_LIMIT, n(long)
    return short[:2] + [medium] + short[2:] + [long]


def test_evaluate_split_decodes_and_scores_every_example_alone_or_cut_to_the_model(tiny, caplog):
    cfg, tok, model, params = tiny
    split = real_split(tok)
    eval_fn = jax.jit(functools.partial(eval_step, model=model))
    generate_fn = jit_generate_nbest(model, cfg.decode)
    with caplog.at_level(logging.INFO):
        scores = evaluation.evaluate_split(split, tok, cfg.data, params, eval_fn, generate_fn, shapes=GIVEN,
                                           description=None)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert scores.metrics["truncated_to_model"] == 1
    assert len(warned) == 1 and warned[0].startswith("1 of 6 examples are longer than the model's learned "
                                                     "positions (source 40, target 48")
    added = BatchShape(batch_size(cfg.data.tokens_per_batch, 48, 48), 48, 48)
    # medium and long share one added shape
    assert f"shapes {[tuple(GIVEN[0]), tuple(added)]} (1 added so that no example is truncated), 1 cut" in caplog.text

    # The reference: each example alone (its other rows empty; the added shape, so nothing
    # compiles again), its sides cut by hand to the model's tables (only the long one is).
    totals = {"loss": 0.0, "tokens": 0.0}
    for i, ex in enumerate(split):
        src = tok.encode_source(ex["source"])[:ENCODER_LIMIT - 1]
        tgt = tok.encode_target(ex["target"])[:DECODER_LIMIT - 1]
        alone = pad_batch([src] + [[]] * (added.batch - 1), [tgt] + [[]] * (added.batch - 1), 48, 48)
        for k in alone:  # really empty rows: pad_batch gives an empty example an EOS
            alone[k][1:] = 0
        h = jax.device_get(generate_fn(params, {k: alone[k] for k in SOURCE_KEYS}))
        assert scores.outputs[i][0].text == tok.decode_target(np.asarray(h.tokens[0, 0, :h.lengths[0, 0]])), i
        sums = jax.device_get(eval_fn(params, alone))
        totals = {k: totals[k] + float(sums[k]) for k in totals}
    assert scores.metrics["loss"] == pytest.approx(totals["loss"] / totals["tokens"], rel=1e-5)


def test_model_limits_come_from_learned_tables_only(tiny, tmp_path):
    """Sinusoidal positions and RNNs have no limit; an ensemble's parameters take the smallest table."""
    params = tiny[3]
    assert evaluation.model_limits(params) == (ENCODER_LIMIT, DECODER_LIMIT)
    _, _, other = build("rnn", "transformer", tmp_path)
    abstract = jax.eval_shape(lambda r: other.init({"params": r}, pad_batch([[5]], [[5]], 8, 8))["params"],
                              jax.random.PRNGKey(0))
    assert evaluation.model_limits(abstract) == (None, None)
    assert evaluation.model_limits([abstract, params]) == (ENCODER_LIMIT, DECODER_LIMIT)


def test_eval_max_shapes_replaces_the_training_shapes():
    """data.eval_max_shapes=1: the split's own single shape (the longest source and target within the max
    lengths, counted by hand below) plus the added one for the two long sources, instead of TRAIN_SHAPES;
    unset, the training shapes come first as before. Every example stays whole either way."""
    tok = SimpleNamespace(encode_source=words, encode_target=words)
    keys = dict(format="jsonl", dir="unused", source="source", target="target", tokens_per_batch=512,
                max_source_len=32, max_target_len=32)
    # (S, T) with EOS: (6, 5) (13, 11) (51, 7) (4, 3) (61, 41) (9, 31) (15, 12); within 32: S <= 15, T <= 31.
    one = corpus.eval_batches(SPLIT, tok, DataConfig(eval_max_shapes=1, **keys), shapes=TRAIN_SHAPES)
    assert one.shapes == (BatchShape(batch_size(512, 15, 31), 15, 31), BatchShape(8, 64, 48))
    default = corpus.eval_batches(SPLIT, tok, DataConfig(**keys), shapes=TRAIN_SHAPES)
    assert default.shapes[:2] == TRAIN_SHAPES
    for it in (one, default):
        got = rows(list(it))
        assert {i: got[i][1:] for i in got} == {i: (words(e["source"]), words(e["target"])) for i, e in enumerate(SPLIT)}
