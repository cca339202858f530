"""The tagger (research/models/tagger.py): first-piece pooling against NumPy, padding invariance, every encoder
learning on real batches of the ddtp_punct_en sample, overfitting 64 sentences, the predicate indicator."""
from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research import tasks
from research.data import corpus, tagged
from research.data.batch import EOS, KEYS, fill_rows
from research.models.tagger import first_pieces
from research.registry import ConfigError
from tests.helpers.marks import slow_after
from tests.helpers.tagging import batches, crafted_config, run_config, sample_corpus, trainer, write_text

ENCODERS = ("rnn", "cnn", "transformer")
STEPS = 8


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    return sample_corpus(tmp_path_factory.mktemp("tag"))


def _words(example: dict) -> list[str]:
    return tagged.parse_source(example["source"])[0]


def _first_offsets(tok, example: dict) -> list[int]:
    """Where each word's first piece sits in the source row: SentencePiece's pieces of the words before it."""
    sizes = [len(tok.text.source.encode(w)) for w in _words(example)]
    return [0, *itertools.accumulate(sizes)][:-1]


def _examples(tok, rows) -> list[tuple]:
    return [(tok.encode_source(r["source"]), tok.encode_target(r["target"]), tok.source_features(r["source"]))
            for r in rows]


def test_words_of_several_pieces_map_to_their_first_piece_as_a_numpy_gather(texts, tmp_path):
    """Real batches of the pipeline; the reference finds each first piece from SentencePiece's own counts."""
    tok = texts.tokenizer
    cfg = run_config("transformer", tmp_path)
    rows = [texts.valid[i] for i in range(32)]
    sp = tok.text.source
    split = [w for r in rows for w in _words(r) if len(sp.encode(w)) >= 3]
    assert len(split) > 30, "the crafted case needs words of several pieces"
    for r in rows:  # encoding word by word gives the pieces of the whole sentence
        assert tok.encode_source(r["source"]) == sp.encode(" ".join(_words(r)))
    batch = next(iter(corpus.eval_batches(corpus.Head(texts.valid, 32), tok, cfg.data)))
    b, s = batch["source"].shape
    t = batch["target_out"].shape[1]
    memory = np.random.default_rng(0).normal(size=(b, s, 8)).astype(np.float32)
    want, present = np.zeros((b, t, 8), np.float32), np.zeros((b, t), np.float32)
    for row, i in enumerate(batch["index"]):
        if i >= 0:
            for j, p in enumerate(_first_offsets(tok, rows[i])):
                want[row, j], present[row, j] = memory[row, p], 1.0
    got, mask = first_pieces(jnp.asarray(memory), jnp.asarray(batch["source_words"]), t)
    np.testing.assert_array_equal(np.asarray(got), want)
    np.testing.assert_array_equal(np.asarray(mask), present)

    # The model's logits are its classifier applied to the encoder's memory at those first pieces.
    model, _ = tasks.get("tagging").build_model(cfg, tok)
    jb = {k: jnp.asarray(v) for k, v in batch.items()}
    params = model.init(jax.random.PRNGKey(0), jb)["params"]
    logits, state = model.apply({"params": params}, jb, capture_intermediates=True, mutable=["intermediates"])
    enc = np.asarray(state["intermediates"]["encoder"]["__call__"][0].memory)
    kernel, bias = (np.asarray(params["classifier"][k]) for k in ("kernel", "bias"))
    for row, i in enumerate(batch["index"][:8]):
        offsets = _first_offsets(tok, rows[i])
        np.testing.assert_allclose(np.asarray(logits)[row, :len(offsets)], enc[row, offsets] @ kernel + bias,
                                   rtol=1e-5, atol=1e-5)


def test_first_pieces_drops_words_cut_off_and_words_past_the_target_width():
    memory = jnp.arange(12, dtype=jnp.float32).reshape(1, 6, 2)
    source_words = jnp.asarray([[1, 0, 2, 3, 0, 0]])  # 3 words; word 2 has two pieces; then EOS and a pad
    got, present = first_pieces(memory, source_words, 2)  # only 2 word positions: word 3 has none
    np.testing.assert_array_equal(np.asarray(got[0]), np.asarray(memory)[0, [0, 2]])
    np.testing.assert_array_equal(np.asarray(present), [[1.0, 1.0]])


def test_batches_carry_word_starts_cut_with_the_source_and_seq2seq_batches_none():
    """fill_rows' per-piece features (research/data/batch.py), against hand-made rows."""
    example = ([11, 12, 13, 14, 15], [5, 6, 7], {"source_words": [1, 0, 2, 3, 0]})  # words of 2, 1 and 2 pieces
    batch = fill_rows([[example], [example[:2]]], 3, 4, 5)  # 3 pieces + EOS fit; row 1 has no feature; row 2 empty
    np.testing.assert_array_equal(batch["source"][0], [11, 12, 13, EOS])
    np.testing.assert_array_equal(batch["source_words"], [[1, 0, 2, 0], [0, 0, 0, 0], [0, 0, 0, 0]])  # 0 at EOS
    np.testing.assert_array_equal(batch["target_out"][0], [5, 6, 7, EOS, 0])
    assert set(fill_rows([[example[:2]]], 1, 8, 8)) == set(KEYS)  # a seq2seq or classifier batch: the keys it had
    with pytest.raises(ValueError, match="per-piece feature 'target_words': its name must start with 'source_'"):
        fill_rows([[(*example[:2], {"target_words": [1] * 5})]], 1, 8, 8)
    with pytest.raises(ValueError, match="row 0: feature 'source_words' has 2 values for 5 source pieces"):
        fill_rows([[(*example[:2], {"source_words": [1, 2]})]], 1, 8, 8)


def _short(texts, n: int, pieces: int, words: int) -> list[dict]:
    """The first n validation sentences of at most `pieces` pieces and `words` words."""
    tok = texts.tokenizer
    out = [r for r in (texts.valid[i] for i in range(len(texts.valid)))
           if len(tok.encode_source(r["source"])) <= pieces and len(_words(r)) <= words]
    return out[:n]


@pytest.mark.parametrize("encoder", ENCODERS)
def test_padding_changes_no_words_logits(texts, tmp_path, encoder):
    """The same 5 sentences in rows of 24 pieces / 20 words and of 40 / 32 with an empty row: the same logits.
    The RNN runs both directions here: the backward one reads the pads first."""
    extra = ["encoder.bidirectional=true"] if encoder == "rnn" else []
    cfg = run_config(encoder, tmp_path, *extra)
    tok = texts.tokenizer
    rows = _short(texts, 5, 23, 19)
    assert len(rows) == 5 and len({len(_words(r)) for r in rows}) > 1
    examples = _examples(tok, rows)
    short = fill_rows([[e] for e in examples], 5, 24, 20)
    long = fill_rows([[e] for e in examples], 6, 40, 32)  # row 5: all padding, as a split's last batch has
    model, _ = tasks.get("tagging").build_model(cfg, tok)
    as_jax = lambda batch: {k: jnp.asarray(v) for k, v in batch.items()}
    params = model.init(jax.random.PRNGKey(0), as_jax(short))["params"]
    a = np.asarray(model.apply({"params": params}, as_jax(short)))
    b = np.asarray(model.apply({"params": params}, as_jax(long)))
    for i, r in enumerate(rows):
        n = len(_words(r))
        np.testing.assert_allclose(b[i, :n], a[i, :n], rtol=1e-5, atol=1e-5)
    assert np.isfinite(b).all()


@pytest.mark.parametrize("encoder", slow_after(1, list(ENCODERS)))
def test_every_encoder_builds_and_its_loss_falls_on_real_batches(texts, tmp_path, encoder):
    cfg = run_config(encoder, tmp_path)
    model, init, step = trainer(cfg, texts.tokenizer)
    data = batches(cfg, texts, 2)
    assert set(data[0]) == {"source", "source_segments", "source_positions", "target_in", "target_out",
                            "target_segments", "target_positions", "source_words"}
    state, losses = init(data[0]), []
    for i in range(STEPS):
        state, metrics = step(state, data[i % 2])
        assert float(metrics["skipped"]) == 0.0
        losses.append(float(metrics["loss"]))
    assert all(np.isfinite(losses)) and losses[-2] < losses[0] - 0.05, losses  # the first batch again, 6 updates on
    words = [int((np.asarray(b["source_words"]) > 0).sum()) for b in data]  # first pieces in the rows
    assert float(metrics["tokens"]) == words[1]  # the loss averages over real words, nothing else


def test_a_small_model_overfits_64_sentences(texts, tmp_path):
    """64 real training sentences (whole, at most 63 pieces) in one batch: every word's tag right."""
    cfg = run_config("cnn", tmp_path, "model.d_model=64", "encoder.channels=64", "encoder.num_layers=2",
                     "optim.learning_rate=0.003")  # about 40 steps (a transformer of 32 needs about 60)
    tok = texts.tokenizer
    rows = [r for r in (texts.train[i] for i in range(len(texts.train))) if len(tok.encode_source(r["source"])) < 64]
    rows = rows[:64]
    batch = {k: jnp.asarray(v) for k, v in fill_rows([[e] for e in _examples(tok, rows)], 64, 64, 64).items()}
    model, init, step = trainer(cfg, tok)
    state = init(batch)
    for _ in range(300):
        trained = state  # a step's accuracy is that of the parameters it starts from
        state, metrics = step(state, batch)
        if float(metrics["accuracy"]) == 1.0:
            break
    logits = np.asarray(model.apply({"params": trained.params}, batch))
    predicted = [[tok.tags.names[k] for k in logits[i, :len(_words(r))].argmax(-1)] for i, r in enumerate(rows)]
    gold = [tagged.tags_of(r["target"]) for r in rows]
    right = sum(p == g for ps, gs in zip(predicted, gold) for p, g in zip(ps, gs))
    total = sum(len(g) for g in gold)
    assert right == total, f"{right / total:.2%} of {total} words after training"
    assert sum(g != "O" for gs in gold for g in gs) > 50  # many marks, not only the majority tag


PROPS = "".join(f"{block}\n\n" for block in [
    "The - (A0* (A0*\ncat - *) *)\nsat sit (V*) *\nand - * *\npurred purr * (V*)\nloudly - * (AM-MNR*)",
    "Dogs - (A0*)\nbark bark (V*)",
])


def test_the_predicate_indicator_marks_the_predicates_pieces_and_steers_the_tagger(tmp_path):
    folder = tmp_path / "srl"
    for split in ("train", "validation", "test"):
        write_text(folder, f"{split}.conll", PROPS)
    cfg = crafted_config(tmp_path, folder, task="span_tagging", fmt="tsv", source="0", target="props", vocab=30)
    texts = corpus.prepare(cfg.data, cfg.tokenizer)
    tok = texts.tokenizer
    rows = [texts.train[i] for i in range(len(texts.train))]
    assert [tagged.parse_source(r["source"])[1] for r in rows] == [2, 4, 1]
    batch = next(iter(corpus.eval_batches(texts.train, tok, cfg.data)))
    for row, i in enumerate(batch["index"]):
        if i < 0:
            continue
        words, predicate = tagged.parse_source(rows[i]["source"])
        sizes = [len(tok.text.source.encode(w)) for w in words]
        start = sum(sizes[:predicate])
        want = np.zeros(batch["source"].shape[1], np.int32)
        want[start:start + sizes[predicate]] = 1  # every piece of the predicate word, nothing else
        np.testing.assert_array_equal(batch["source_predicate"][row], want)

    model, _ = tasks.get("span_tagging").build_model(cfg, tok)
    jb = {k: jnp.asarray(v) for k, v in batch.items()}
    params = model.init(jax.random.PRNGKey(0), jb)["params"]
    assert set(params) == {"source_embed", "predicate_embed", "encoder", "classifier"}
    first, second = (int(np.flatnonzero(batch["index"] == i)[0]) for i in (0, 1))  # one sentence, two predicates
    logits = np.asarray(model.apply({"params": params}, jb))
    assert np.abs(logits[first] - logits[second]).max() > 1e-3
    table = params["predicate_embed"]["embedding"]
    same = {**params, "predicate_embed": {"embedding": jnp.stack([table[0], table[0]])}}  # the flag made void
    blind = np.asarray(model.apply({"params": same}, jb))
    np.testing.assert_allclose(blind[first], blind[second], rtol=1e-6, atol=1e-6)


def test_split_scores_are_the_predictions_and_words_past_the_model_get_the_fallback(texts, tmp_path):
    """Learned positions of 32: longer validation sentences lose their later words to the model's limit."""
    cfg = run_config("transformer", tmp_path, "encoder.positions=learned", "encoder.max_len=32")
    task, tok = tasks.get("tagging"), texts.tokenizer
    model, _ = task.build_model(cfg, tok)
    params = model.init(jax.random.PRNGKey(0), batches(cfg, texts, 1)[0])["params"]
    scores = task.evaluate_split(texts.valid, tok, cfg.data, params, None, task.predictor(model, cfg.decode),
                                 description="", split="validation")
    rows = [texts.valid[i] for i in range(len(texts.valid))]
    assert scores.refs == [r["target"] for r in rows] and len(scores.hyps) == 100
    past = [[j for j, p in enumerate(_first_offsets(tok, r)) if p >= 31] for r in rows]  # 31 pieces + EOS fit
    assert scores.metrics["truncated_words"] == sum(map(len, past)) > 0
    for hyp, cut in zip(scores.hyps, past):
        assert all(hyp.split()[j] == "O" for j in cut)
    assert all(len(h.split()) == len(r.split()) for h, r in zip(scores.hyps, scores.refs))
    assert {k: scores.metrics[k] for k in task.score(scores.hyps, scores.refs, None)} == task.score(
        scores.hyps, scores.refs, None)
    matrix = np.array(scores.metrics["confusion_matrix"])
    assert scores.metrics["labels"] == list(tok.tags.names) and matrix.sum() == sum(len(r.split()) for r in scores.refs)
    assert np.trace(matrix) / matrix.sum() == pytest.approx(scores.metrics["accuracy"])
    assert scores.sources[0] == " ".join(_words(rows[0]))


def test_tagger_records_its_architecture_and_refuses_packing_and_pretrained_embeddings(texts, tmp_path):
    task = tasks.get("tagging")
    model, arch = task.build_model(run_config("cnn", tmp_path), texts.tokenizer)
    meta = arch.meta()
    assert meta["kind"] == "tagger" and "decoder" not in meta and meta["model"] == {"d_model": 16}
    assert meta["tags"] == len(texts.tokenizer.tags) == 5 and meta["predicate"] is False
    params = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), batches(run_config("cnn", tmp_path), texts, 1)[0]))
    assert set(params["params"]) == {"source_embed", "encoder", "classifier"}
    with pytest.raises(ConfigError, match="data.pack: a tagger numbers the words of each row from 1"):
        task.check_packing(arch)
    frozen = run_config("cnn", tmp_path, "model.embeddings.freeze=true", "model.share_embeddings=false",
                        "model.embeddings.side=source")
    with pytest.raises(ConfigError, match="model.embeddings: pretrained or frozen embeddings are for seq2seq"):
        task.build_model(frozen, texts.tokenizer)
