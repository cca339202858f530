"""The language model (research/models/language_model.py) with every decoder: no memory in its parameters,
cached decoding equal to the full forward pass, packed documents equal to documents alone."""
from __future__ import annotations

import dataclasses
import re

import jax
import numpy as np
import pytest

from research import tasks
from research.data.batch import BOS, EOS
from research.decoding.sample import filter_logits
from research.models.seq2seq import Seq2Seq, architecture
from research.tasks import lm
from tests.helpers.lm import DECODERS, full_logits, greedy_by_recomputing, init, run_config, sample_corpus, text_batch

# What reads a memory in each seq2seq decoder (its modules, by name): absent from a language model's tree.
MEMORY = re.compile(r"cross_attn|bridge_|query_embed|(?<!self_)attn\d|attention|combine")
ONLY_SEQ2SEQ = {"rnn": {"bridge_h0", "bridge_h1", "bridge_c0", "bridge_c1", "step/attention", "step/combine"},
                "cnn": {"query_embed0", "query_embed1", "attn0", "attn1"},
                "transformer": {"cross_attn0", "cross_attn1", "cross_attn_block0", "cross_attn_block1"}}


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    return sample_corpus(tmp_path_factory.mktemp("lm"))


def _paths(tree) -> set[str]:
    """The parameter paths of a tree, e.g. "step/layer0/input/kernel"."""
    return {"/".join(str(getattr(k, "key", k)) for k in path) for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _module(path: str) -> str:
    """The decoder's module a parameter path belongs to: its first name, or two for the RNN's step ("step/combine")."""
    names = path.split("/")
    return "/".join(names[:2]) if names[0] == "step" else names[0]


def _documents(corpus, n: int, longest: int = 30) -> list[list[int]]:
    """The ids of the first n validation documents, each cut to `longest` pieces."""
    return [corpus.tokenizer.encode_target(corpus.valid[i]["target"])[:longest] for i in range(n)]


@pytest.mark.parametrize("decoder", DECODERS)
def test_the_lm_has_no_parameter_that_reads_a_memory(texts, tmp_path, decoder):
    cfg = run_config(decoder, tmp_path, "model.tie_output=false")
    model, arch = tasks.get("lm").build_model(cfg, texts.tokenizer)
    batch = text_batch(_documents(texts, 2), 32)
    params = jax.eval_shape(lambda: model.init({"params": jax.random.PRNGKey(0)}, batch)["params"])
    assert set(params) == {"embed", "decoder", "output"}
    found = [p for p in _paths(params) if MEMORY.search(p)]
    assert found == [], found

    # The seq2seq decoder of the same config has exactly those modules more, and no other parameter path.
    v = texts.tokenizer.target_vocab
    s2s = Seq2Seq(architecture(cfg, v, v))
    full = _paths(jax.eval_shape(lambda: s2s.init({"params": jax.random.PRNGKey(0)}, batch)["params"])["decoder"])
    mine = _paths(params["decoder"])
    assert mine <= full
    assert {_module(p) for p in full - mine} == ONLY_SEQ2SEQ[decoder]
    assert arch.meta()["kind"] == "language_model" and "encoder" not in arch.meta()


def _model(decoder, texts, tmp_path, *extra):
    """An untied LM with plain random init (logits of order 1: a tied random model mostly repeats its input).
    A relative-position table gets random entries: at its initial zeros any misplaced bias would pass."""
    cfg = run_config(decoder, tmp_path, "model.tie_output=false", *extra)
    model, _ = tasks.get("lm").build_model(cfg, texts.tokenizer)
    docs = _documents(texts, 4)
    params = init(model, text_batch(docs, 32), seed=1)
    if "relative_bias" in params["decoder"]:
        table = params["decoder"]["relative_bias"]["bias"]
        params["decoder"]["relative_bias"]["bias"] = np.random.default_rng(0).normal(size=table.shape).astype(np.float32)
    return cfg, model, params, docs


@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.slow  # `make test-slow`: 2026-12-03 durations, 30-380 s each
def test_cached_steps_equal_the_full_forward_pass_and_packed_rows_equal_rows_alone(texts, tmp_path, decoder):
    _check_cached_and_packed(*_model(decoder, texts, tmp_path))


def test_relative_positions_cached_steps_equal_the_full_pass_and_packed_rows_equal_rows_alone(texts, tmp_path):
    """The transformer LM with T5's one-sided relative positions (decoder.positions=relative): each step's bias over
    its history is the full pass's, and packed documents, whose positions restart, see only their own distances."""
    _check_cached_and_packed(*_model("transformer", texts, tmp_path, "decoder.positions=relative"))


def _check_cached_and_packed(cfg, model, params, docs):
    batch = text_batch(docs, 32)
    full = np.asarray(model.apply({"params": params}, batch))  # [B, T, V]
    method = type(model)
    cache = model.apply({"params": params}, len(docs), 32, method=method.init_cache)
    step = jax.jit(lambda c, t: model.apply({"params": params}, c, t, method=method.decode_step))
    real = np.asarray(batch["target_segments"]) > 0
    for t in range(int(real.sum(1).max())):
        logits, cache = step(cache, batch["target_in"][:, t])
        rows = real[:, t]
        np.testing.assert_allclose(np.asarray(logits)[rows], full[rows, t], rtol=1e-5, atol=1e-5)

    # Three documents in one packed row: each position's logits are those of its document alone.
    packed = text_batch(docs[:3], 96, packed=True)
    logits = np.asarray(model.apply({"params": params}, packed))[0]
    segments = np.asarray(packed["target_segments"])[0]
    for k, ids in enumerate(docs[:3], 1):
        np.testing.assert_allclose(logits[segments == k], full[k - 1, : len(ids) + 1], rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # minutes on 2 cores: `make test-slow` (measured in the 2026-12-03 durations)
@pytest.mark.parametrize("decoder", DECODERS)
def test_cached_greedy_and_sampling_equal_recomputing_the_whole_prefix(texts, tmp_path, decoder):
    cfg, model, params, docs = _model(decoder, texts, tmp_path)
    greedy = dataclasses.replace(cfg.decode, search="greedy", max_len_a=0.0, max_len_b=8)
    for prompt in (docs[0][:5], []):  # a prompt, and none (BOS alone)
        h = jax.device_get(lm.continuations(model, greedy, len(prompt), 2)(params, np.asarray(prompt, np.int32)))
        expected = greedy_by_recomputing(model, params, prompt, 8)
        assert len(expected) > 2, expected  # not a model that ends at once
        for row in range(2):
            assert h.tokens[row, 0, : h.lengths[row, 0]].tolist() == expected

    # Sampling: row i draws from the filtered distribution of the whole prefix with fold_in(fold_in(key, i), step).
    sampling = dataclasses.replace(greedy, search="sample", temperature=0.8, top_k=20, seed=3)
    prompt = docs[1][:4]
    h = jax.device_get(lm.continuations(model, sampling, len(prompt), 3)(params, np.asarray(prompt, np.int32)))
    drawn = []
    for row in range(3):
        key, out = jax.random.fold_in(jax.random.key(3), row), []
        while len(out) < 8 and (not out or out[-1] != EOS):
            logits = full_logits(model, params, [BOS, *prompt, *out])[-1:]
            filtered = filter_logits(logits, 0.8, 20, 1.0)
            out.append(int(jax.random.categorical(jax.random.fold_in(key, len(out)), filtered[0])))
        assert h.tokens[row, 0, : h.lengths[row, 0]].tolist() == out
        drawn.append(tuple(out))
    assert len(set(drawn)) > 1, "the rows should draw different continuations"
