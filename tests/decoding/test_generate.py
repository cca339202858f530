"""generate: the config picks the search; a sentence's sample depends on the seed and the sentence only."""
from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from research.decoding.config import DecodeConfig
from research.decoding.generate import jit_generate, jit_generate_nbest
from research.registry import ConfigError
from tests.helpers.models import build, encode_batch, init, real_pairs


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    cfg, tok, model = build("transformer", "rnn", tmp_path_factory.mktemp("generate"), "model.tie_output=false")
    pairs = real_pairs(4)
    batch = encode_batch(tok, pairs, 48, 48)
    return cfg, tok, model, init(model, batch), pairs


@pytest.mark.slow  # `make test-slow`: 2026-12-03 durations, 30-380 s each
def test_sample_depends_on_seed_and_sentence_not_on_batch(tiny):
    cfg, tok, model, params, pairs = tiny
    sample_cfg = dataclasses.replace(cfg.decode, search="sample", temperature=2.0, max_len_a=0.0, max_len_b=8)
    run = lambda c, p, s: jax.device_get(jit_generate(model, c)(params, encode_batch(tok, p, s, 48)))
    tokens, lengths, _ = run(sample_cfg, pairs, 48)
    # Reversed rows, another padded length: each sentence keeps its sample.
    rev_tokens, rev_lengths, _ = run(sample_cfg, pairs[::-1], 40)
    np.testing.assert_array_equal(rev_tokens[::-1], tokens)
    np.testing.assert_array_equal(rev_lengths[::-1], lengths)
    other, _, _ = run(dataclasses.replace(sample_cfg, seed=1), pairs, 48)
    assert not np.array_equal(other, tokens)
    greedy, _, _ = run(dataclasses.replace(sample_cfg, search="greedy", temperature=1.0), pairs, 48)
    assert not np.array_equal(greedy, tokens), "temperature 2 should not reproduce greedy search"


def test_beam_returns_n_best_and_the_best_of_them(tiny):
    cfg, tok, model, params, pairs = tiny
    beam_cfg = dataclasses.replace(cfg.decode, search="beam", beam_size=3, n_best=3, max_len_a=0.0, max_len_b=6)
    batch = encode_batch(tok, pairs, 48, 48)
    h = jax.device_get(jit_generate_nbest(model, beam_cfg)(params, batch))
    assert h.tokens.shape == (4, 3, 6) and h.scores.shape == h.log_probs.shape == h.lengths.shape == (4, 3)
    assert (np.diff(h.scores, axis=1) <= 0).all()
    tokens, lengths, scores = jax.device_get(jit_generate(model, beam_cfg)(params, batch))
    np.testing.assert_array_equal(tokens, h.tokens[:, 0])
    np.testing.assert_allclose(scores, h.scores[:, 0], rtol=1e-6)


def test_sampling_with_a_beam_is_refused():
    with pytest.raises(ConfigError, match="beam_size: 4 applies to search=beam only, but search=sample"):
        DecodeConfig(search="sample", beam_size=4)


def test_outputs_stay_within_a_learned_decoder_table(tmp_path):
    """A CNN decoder's learned positions have decoder.max_len rows: no output is longer, although
    max_len_b alone would allow 40 tokens. An untrained model with EOS pushed down runs to the limit."""
    cfg, tok, model = build("transformer", "cnn", tmp_path, "model.tie_output=false", "decoder.max_len=6")
    batch = encode_batch(tok, real_pairs(2), 48, 48)
    params = init(model, batch)
    params["output"]["bias"] = params["output"]["bias"].at[3].set(-1e9)  # EOS never wins
    decode = DecodeConfig(max_len_a=0.0, max_len_b=40)
    tokens, lengths, _ = jit_generate(model, decode)(params, batch)
    assert tokens.shape[1] == 6 and lengths.tolist() == [6, 6]
