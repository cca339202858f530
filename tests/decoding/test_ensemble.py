"""Ensembles: one member is the model itself; several match an uncached NumPy reference; tokenizers must agree.

The reference decodes greedily in a Python loop: at every step each member
reruns its full-sequence call (the training code path) on the whole prefix,
NumPy combines the members' probabilities in float64 and takes the argmax.
It shares neither the decoder caches, nor the search loop, nor the
combination code with what it checks. The two members have different
encoder and decoder kinds (transformer; cnn encoder, rnn decoder), so their
states differ in structure.
"""
from __future__ import annotations

import dataclasses
import logging
import shutil
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research import evaluate, translate
from research.data.batch import BOS, EOS, PAD
from research.decoding import ensemble
from research.decoding.corpus import SOURCE_KEYS
from research.decoding.ensemble import Ensemble
from research.decoding.generate import jit_generate_nbest
from research.registry import ConfigError
from research.run_dir import Run
from tests.helpers.models import build, encode_batch, real_pairs, tokenizer

STEPS = 24  # decode.max_len_b with max_len_a = 0: every row may generate 24 tokens; also the batch's lengths
MEMBERS = [("transformer", "transformer"), ("cnn", "rnn")]  # two decoder kinds, two kinds of cache
# One layer each and one batch shape [8, 24] everywhere (the evaluation and translation pipelines
# included, through these data settings), so that equal programs hit the compilation cache.
SMALL = ["encoder.num_layers=1", "decoder.num_layers=1", "model.tie_output=false", "data.max_source_len=24",
         "data.max_target_len=24", "data.tokens_per_batch=192", "data.max_shapes=1", "data.bucket_width=8"]


def random_params(model, batch, seed: int):
    """Untrained parameters of Flax's shapes, drawn in NumPy: compiling `model.init` would take most of this module's time.

    Embeddings ~ N(0, 1 / width) as in `Seq2Seq`, other matrices and kernels ~ N(0, 1 / fan-in),
    norm scales 1, other vectors (biases) ~ N(0, 0.1^2): logits of order 1, as with Flax's own
    initialisers, and outputs that follow the source.
    """
    shapes = jax.eval_shape(lambda b: model.init({"params": jax.random.key(0)}, b)["params"], batch)
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        if path[-1].key == "embedding":
            return jnp.asarray(rng.normal(0, leaf.shape[-1] ** -0.5, leaf.shape), leaf.dtype)
        if len(leaf.shape) >= 2:
            return jnp.asarray(rng.normal(0, (leaf.size // leaf.shape[-1]) ** -0.5, leaf.shape), leaf.dtype)
        if path[-1].key == "scale":
            return jnp.ones(leaf.shape, leaf.dtype)
        return jnp.asarray(rng.normal(0, 0.1, leaf.shape), leaf.dtype)

    return jax.tree_util.tree_map_with_path(draw, shapes)


@dataclasses.dataclass(frozen=True)
class Tiny:
    cfg: Any  # the first member's run config (data, tokenizer and decode are the same for all)
    tok: Any
    decode: Any  # greedy, up to STEPS tokens per row
    batch: dict  # 8 real pairs, [8, STEPS] source and target (the smallest batch the data config allows)
    pairs: list
    members: list  # (model, params, jitted full-sequence forward) per member

    @property
    def models(self):
        return tuple(m for m, _, _ in self.members)

    @property
    def params(self):
        return tuple(p for _, p, _ in self.members)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Two untrained models of one tokenizer, each biased towards EOS so rows end at different steps."""
    spm = tmp_path_factory.mktemp("ensemble")
    # Untied output layers: with tied embeddings a random decoder just repeats its input token.
    built = [build(encoder, decoder, spm, *SMALL) for encoder, decoder in MEMBERS]  # one tokenizer, trained once
    cfg, tok = built[0][:2]
    # Sources of 17 to 23 pieces with EOS: one source length, 24, in every pipeline.
    pairs = [p for p in real_pairs(40, max_words=8)
             if 16 <= len(tok.encode_source(p[0])) < STEPS - 1 and len(tok.encode_target(p[1])) < STEPS - 1][:8]
    assert len(pairs) == 8, "the shipped sample has too few pairs of these lengths"
    batch = encode_batch(tok, pairs, STEPS, STEPS)
    members = []
    for seed, (_, _, model) in enumerate(built):
        params = random_params(model, batch, seed)
        forward = jax.jit(lambda p, b, m=model: m.apply({"params": p}, b))  # [B, T, V], the training code path
        logits = np.asarray(forward(params, batch))
        gap = (logits.max(-1) - logits[..., EOS])[batch["target_segments"] > 0]
        params["output"]["bias"] = params["output"]["bias"].at[EOS].add(float(np.quantile(gap, 0.2)))
        members.append((model, params, forward))
    decode = dataclasses.replace(cfg.decode, search="greedy", beam_size=1, max_len_a=0.0, max_len_b=STEPS)
    return Tiny(cfg, tok, decode, batch, pairs, members)


def _decode(cfg, models, params, batch, rule="prob", **search):
    """Hypotheses of one model (a bare model and params) or of an ensemble (tuples)."""
    cfg = dataclasses.replace(cfg, **search)
    batch = {k: batch[k] for k in SOURCE_KEYS}  # as decode_batches passes it: the same program
    if isinstance(models, tuple):
        return jax.device_get(ensemble.jit_generate_nbest(Ensemble(models, rule), cfg)(params, batch))
    return jax.device_get(jit_generate_nbest(models, cfg)(params, batch))


def reference_greedy(members, batch):
    """Greedy decoding of the members' mean probabilities, uncached, in NumPy; -> (tokens [B, STEPS], lengths, scores)."""
    b = batch["source"].shape[0]
    prefix = np.full((b, STEPS), PAD, np.int32)
    prefix[:, 0] = BOS
    tokens, lengths, scores = np.full((b, STEPS), PAD, np.int32), np.zeros(b, np.int32), np.zeros(b)
    done = np.zeros(b, bool)
    full = {"target_segments": np.ones_like(prefix), "target_positions": np.tile(np.arange(STEPS, dtype=np.int32), (b, 1))}
    for i in range(STEPS):
        probs = []
        for _, params, forward in members:
            logits = np.asarray(forward(params, {**batch, **full, "target_in": prefix}), np.float64)[:, i]  # [B, V]
            probs.append(softmax(logits))
        combined = np.log(np.mean(probs, axis=0))  # [B, V]
        token = np.where(done, PAD, combined.argmax(-1))
        scores += np.where(done, 0.0, combined[np.arange(b), token])
        lengths += ~done
        tokens[:, i] = token
        if i + 1 < STEPS:
            prefix[:, i + 1] = token
        done |= (token == EOS) | (lengths >= STEPS)
    return tokens, lengths, scores


def teacher_forced(members, batch, tokens):
    """[B, STEPS] log of the members' mean probability of each given token, after BOS and the tokens before it."""
    b = tokens.shape[0]
    target_in = np.concatenate([np.full((b, 1), BOS, np.int32), tokens[:, :-1]], axis=1)
    full = {"target_in": target_in, "target_segments": np.ones_like(target_in),
            "target_positions": np.tile(np.arange(STEPS, dtype=np.int32), (b, 1))}
    probs = np.mean([softmax(np.asarray(f(p, {**batch, **full}), np.float64)) for _, p, f in members], axis=0)
    return np.log(np.take_along_axis(probs, tokens[..., None], axis=-1)[..., 0])


def softmax(logits):
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


BEAM = {"search": "beam", "beam_size": 3, "n_best": 2}


@pytest.mark.parametrize("search,rule", [("greedy", "prob"), ("beam", "logprob")])
@pytest.mark.slow  # `make test-slow`: 2026-12-03 durations, 30-380 s each
def test_an_ensemble_of_one_is_the_model(tiny, search, rule):
    model, params, _ = tiny.members[1]
    opts = BEAM if search == "beam" else {}
    alone = _decode(tiny.decode, model, params, tiny.batch, **opts)
    one = _decode(tiny.decode, (model,), (params,), tiny.batch, rule, **opts)
    np.testing.assert_array_equal(one.tokens, alone.tokens)
    np.testing.assert_array_equal(one.lengths, alone.lengths)
    np.testing.assert_allclose(one.scores, alone.scores, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(one.log_probs, alone.log_probs, rtol=1e-5, atol=1e-5)


def test_an_ensemble_of_a_model_with_itself_gives_its_tokens(tiny):
    model, params, _ = tiny.members[1]  # the beam search of the test above: compiled once
    alone = _decode(tiny.decode, model, params, tiny.batch, **BEAM)
    twice = _decode(tiny.decode, (model, model), (params, params), tiny.batch, **BEAM)
    np.testing.assert_array_equal(twice.tokens, alone.tokens)
    np.testing.assert_allclose(twice.scores, alone.scores, rtol=1e-5, atol=1e-5)


def test_the_rules_average_probabilities_or_log_probabilities():
    log_p = np.log(np.random.default_rng(0).dirichlet(np.ones(7), size=(3, 2)))  # [members 3, rows 2, V 7]
    members = [jnp.asarray(x, jnp.float32) for x in log_p]
    np.testing.assert_allclose(ensemble.combine(members, "prob"), np.log(np.exp(log_p).mean(0)), rtol=1e-5)
    geometric = np.exp(log_p.mean(0))
    np.testing.assert_allclose(ensemble.combine(members, "logprob"),
                               np.log(geometric / geometric.sum(-1, keepdims=True)), rtol=1e-5)
    with pytest.raises(ConfigError, match="ensemble: 'mean' is not one of prob, logprob"):
        ensemble.combine(members, "mean")


def test_two_different_models_match_the_uncached_numpy_reference(tiny):
    """The default rule end to end; the other differs only in `combine`, checked above (a compile saved)."""
    got = _decode(tiny.decode, tiny.models, tiny.params, tiny.batch, "prob")
    tokens, lengths, scores = reference_greedy(tiny.members, tiny.batch)
    np.testing.assert_array_equal(got.tokens[:, 0], tokens)
    np.testing.assert_array_equal(got.lengths[:, 0], lengths)
    np.testing.assert_allclose(got.scores[:, 0], scores, rtol=1e-4, atol=1e-4)
    assert len(set(lengths.tolist())) > 1, "rows should end at different steps"
    for member in tiny.members:  # the combination matters: no member alone decodes the same
        assert not np.array_equal(reference_greedy([member], tiny.batch)[0], tokens)


def test_beam_search_reorders_every_members_cache(tiny):
    """Each n-best hypothesis of a beam search over two kinds of cache has, teacher-forced through the
    members' full-sequence calls, the log-probability the search reports: a cache left in another beam's
    order would have scored its tokens against another prefix."""
    cfg = dataclasses.replace(tiny.decode, search="beam", beam_size=3, n_best=3, length_penalty=0.6)
    h = _decode(cfg, tiny.models, tiny.params, tiny.batch)
    assert ((h.lengths < STEPS) & (h.lengths > 0)).any(), "some hypotheses should end with EOS"
    assert len(set(h.tokens[:, 0, 0].tolist())) > 1, "the rows should differ"
    for j in range(cfg.n_best):
        lengths = h.lengths[:, j]
        token_log_p = teacher_forced(tiny.members, tiny.batch, h.tokens[:, j])
        mask = np.arange(STEPS)[None, :] < lengths[:, None]
        np.testing.assert_allclose(h.log_probs[:, j], (token_log_p * mask).sum(1), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(h.scores[:, j], h.log_probs[:, j] / ((5 + lengths) / 6) ** 0.6, rtol=1e-5)


def test_evaluate_scores_the_combined_distribution_and_records_the_members(tiny, tmp_path, monkeypatch):
    examples = [{"source": s, "target": t} for s, t in tiny.pairs]
    monkeypatch.setattr(evaluate, "read_split", lambda d, split: examples)
    cfg = dataclasses.replace(tiny.cfg, decode=tiny.decode)
    runs = [Run(tmp_path / f"run{i}", cfg, tiny.tok, m, p, "best", 10 * i, {}) for i, (m, p, _) in enumerate(tiny.members)]
    results, outputs = evaluate.evaluate_ensemble(runs, "test", "prob")
    # The loss of the averaged probabilities, from each member's full-sequence logits on the same batch.
    probs = np.mean([softmax(np.asarray(f(p, tiny.batch), np.float64)) for _, p, f in tiny.members], axis=0)
    target = np.asarray(tiny.batch["target_out"])
    weights = np.asarray(tiny.batch["target_segments"]) > 0
    nll = -np.log(np.take_along_axis(probs, target[..., None], axis=-1)[..., 0])[weights]
    assert results["loss"] == pytest.approx(nll.mean(), rel=1e-4)
    assert results["ensemble"] == {"rule": "prob", "members": [
        {"run_dir": str(r.path), "checkpoint": "best", "step": r.step} for r in runs]}
    assert results["examples"] == 8 and len(outputs) == 8
    (tmp_path / "ensemble").mkdir()
    paths = evaluate.write(tmp_path / "ensemble", "test", results, outputs)
    assert paths["hyps"].read_text(encoding="utf-8").count("\n") == 8
    # translate: the same ensemble decodes raw lines the same way.
    lines = [e["source"] for e in examples]
    assert translate.Translator(*runs)(lines) == [o[0].text for o in outputs]


def _minimal_run(path, tok):
    """A folder with only a tokenizer: enough for the checks made before any checkpoint is read."""
    (path / "tokenizer").mkdir(parents=True)
    for src, name in zip(tok.paths, ("joint.model",) if len(tok.paths) == 1 else ("source.model", "target.model")):
        shutil.copy(src, path / "tokenizer" / name)
    return path


def test_runs_with_different_tokenizers_or_no_folder_of_their_own_are_refused(tiny, tmp_path, caplog, monkeypatch):
    cfg, tok = tiny.cfg, tiny.tok
    monkeypatch.setattr(evaluate.console, "setup_logging", lambda **kw: None)  # it would remove caplog's handler
    other = tokenizer(dataclasses.replace(cfg, tokenizer=dataclasses.replace(cfg.tokenizer, vocab_size=600)),
                      tmp_path / "spm")
    a, same, b = _minimal_run(tmp_path / "a", tok), _minimal_run(tmp_path / "same", tok), _minimal_run(tmp_path / "b", other)
    ensemble.check_tokenizers([(str(a), tok), (str(same), tok)])  # the same files: accepted
    for main, args in ((evaluate.main, [f"out={tmp_path / 'ens'}"]), (translate.main, [])):
        caplog.clear()
        with caplog.at_level(logging.ERROR):
            assert main([f"run_dir={a},{same},{b}", *args]) == 2
        assert f"run_dir={b}: its tokenizer differs from that of {a}" in caplog.text
        assert "source vocabulary 600 vs 800 pieces" in caplog.text and "fingerprint" in caplog.text
    for args, message in (([], "out: required with several runs"), ([f"out={a}"], f"out={a}: is one of the runs"),
                          ([f"out={tmp_path}", "ensemble=mean"], "ensemble: 'mean' is not one of prob, logprob")):
        caplog.clear()
        with caplog.at_level(logging.ERROR):
            assert evaluate.main([f"run_dir={a},{same}", *args]) == 2
        assert message in caplog.text
    assert not (tmp_path / "ens").exists() and not (a / "eval_test.json").exists()
