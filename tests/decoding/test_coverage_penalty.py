"""Coverage penalties (research/decoding/coverage_penalty.py): the two forms by hand, beam search with one against
brute force, the scores a real model's search returns against its teacher-forced attention, and the refusals."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.data.batch import BOS, EOS, PAD, pad_batch
from research.decoding.beam import beam_search, length_penalty
from research.decoding.config import DecodeConfig
from research.decoding.coverage_penalty import summary, wu
from research.decoding.ensemble import Ensemble
from research.decoding.ensemble import jit_generate_nbest as jit_ensemble_nbest
from research.decoding.generate import jit_generate_nbest
from research.decoding.uncached import jit_generate_nbest_uncached
from research.registry import ConfigError
from tests.helpers.models import attention, build, encode_batch, init, real_pairs
from tests.helpers.search import brute_force, toy_model

COVERAGE = [[0.5, 2.0, 1.0, 0.25, 0.0], [3.0, 0.0, 0.0, 0.0, 0.0]]
MASK = [[True, True, True, True, False], [True, False, False, False, False]]  # the zeros past the mask are pads


def test_the_two_penalties_match_a_hand_computation_and_ignore_pads():
    c, m = jnp.asarray(COVERAGE), jnp.asarray(MASK)
    # GNMT: -beta * sum log min(c, 1) over real positions: row 0 log .5 + 0 + 0 + log .25; row 1 log 1 = 0.
    np.testing.assert_allclose(np.asarray(wu(c, m, 0.2)), [-0.2 * (np.log(0.5) + np.log(0.25)), 0.0], rtol=1e-6)
    # summary: beta * sum max(c - 1, 0): row 0 the 2.0 costs 1; row 1 the 3.0 costs 2.
    np.testing.assert_allclose(np.asarray(summary(c, m, 0.5)), [0.5, 1.0], rtol=1e-6)
    # A real position with no attention at all costs beta * -log(1e-10), not infinity.
    np.testing.assert_allclose(np.asarray(wu(jnp.zeros((1, 2)), jnp.asarray([[True, False]]), 1.0)), [-np.log(1e-10)],
                               rtol=1e-6)


def _toy_with_coverage(seed: int, batch: int, vocab: int, source: int):
    """tests/helpers/search.py's toy model whose state also sums an 'attention' over `source` positions that
    depends on each step's input token, as a decoder's does. -> (step_fn, state, table [vocab, source])."""
    step_fn, state = toy_model(seed, batch, vocab, banned=(PAD, BOS))
    table = jax.nn.softmax(2.0 * jax.random.normal(jax.random.key(seed + 100), (vocab, source)), -1)

    def with_coverage(s, tokens):
        logits, inner = step_fn(s["inner"], tokens)
        return logits, {"inner": inner, "coverage": s["coverage"] + table[tokens]}

    return with_coverage, {"inner": state, "coverage": jnp.zeros((batch, source))}, np.asarray(table)


@pytest.mark.parametrize("form,beta", [(wu, 0.7), (summary, 1.5)])
def test_beam_search_with_a_coverage_penalty_finds_the_brute_force_ranking(form, beta):
    """Vocab 5 with PAD and BOS banned: beam 32 is exhaustive, so its n-best is the brute-force n-best under
    score = log_prob / lp(length) - penalty(coverage of the steps that made the hypothesis)."""
    vocab, source, alpha, n_best = 5, 3, 0.6, 4
    max_len = [4, 3]
    step_fn, state, table = _toy_with_coverage(0, 2, vocab, source)
    mask = jnp.ones((2 * 32, source), bool)
    penalty = lambda s: form(s["coverage"], mask, beta)  # noqa: E731
    fn = jax.jit(lambda s, m: beam_search(step_fn, s, 32, 5, m, alpha, n_best, penalty=penalty))
    tokens, lengths, scores, _ = jax.tree.map(np.asarray, fn(state, jnp.asarray(max_len, jnp.int32)))

    def cost(hyp):  # the inputs that made hyp: BOS, then all its tokens but the last
        inputs = (BOS, *hyp[:-1])
        return float(form(jnp.asarray(table[list(inputs)].sum(0))[None], jnp.ones((1, source), bool), beta)[0])

    moved = 0
    for row in range(2):
        best = brute_force(step_fn, state, row, vocab, max_len[row], alpha, penalty=cost)[:n_best]
        plain = brute_force(step_fn, state, row, vocab, max_len[row], alpha)[:n_best]
        moved += [h for _, _, h in best] != [h for _, _, h in plain]
        for j, (score, _, hyp) in enumerate(best):
            assert tuple(tokens[row, j, : lengths[row, j]]) == hyp
            np.testing.assert_allclose(scores[row, j], score, rtol=1e-5)
    assert moved  # the penalty re-ranked something, so the test tells the two apart


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny transformer + RNN (coverage fed to its attention) with random weights, and a batch."""
    _, tok, model = build("transformer", "rnn", tmp_path_factory.mktemp("penalty"), "model.tie_output=false",
                          "decoder.coverage=true")
    batch = encode_batch(tok, real_pairs(4), 40, 40)
    return model, init(model, batch, seed=1), batch


@pytest.mark.parametrize("form,name,beta", [(wu, "wu", 0.3), (summary, "summary", 0.5)])
@pytest.mark.slow  # `make test-slow`: 2026-12-03 durations, 30-380 s each
def test_each_returned_score_is_its_length_normalised_log_prob_minus_the_penalty_of_its_attention(tiny, form, name, beta):
    model, params, batch = tiny  # 24 steps over sources of at most 8 words: some positions get over 1 in total
    cfg = DecodeConfig(search="beam", beam_size=4, n_best=2, length_penalty=0.6, max_len_a=0.0, max_len_b=24,
                       coverage_penalty=name, coverage_beta=beta)
    hyps = jax.tree.map(np.asarray, jit_generate_nbest(model, cfg)(params, batch))
    source = np.asarray(batch["source"])
    mask = source != PAD
    checked = 0
    for row in range(source.shape[0]):
        for j in range(cfg.n_best):
            n = int(hyps.lengths[row, j])
            made = hyps.tokens[row, j, :n].tolist()
            # Teacher-force what made it: inputs BOS + all but its last token (pad_batch adds the source's EOS).
            forced = {k: jnp.asarray(v) for k, v in pad_batch([source[row][mask[row]][:-1].tolist()], [made[:-1]],
                                                               source.shape[1], n + 1).items()}
            a = attention(model, params, forced)[0, :n]  # [n, S]
            expected = float(form(jnp.asarray(a.sum(0))[None], jnp.asarray(mask[row])[None], beta)[0])
            got = hyps.log_probs[row, j] / float(length_penalty(n, cfg.length_penalty)) - hyps.scores[row, j]
            np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)
            checked += expected > 1e-3
    assert checked  # some hypotheses paid a penalty worth checking


def test_the_penalty_is_refused_where_no_cached_coverage_exists(tiny):
    model, params, batch = tiny
    cfg = DecodeConfig(search="beam", beam_size=2, coverage_penalty="summary", coverage_beta=1.0)
    with pytest.raises(ConfigError, match=r"decode\.coverage_penalty: summary: the uncached reference search"):
        jit_generate_nbest_uncached(model, cfg)(params, batch)
    with pytest.raises(ConfigError, match=r"decode\.coverage_penalty: summary: an ensemble"):
        jit_ensemble_nbest(Ensemble((model, model)), cfg)((params, params), batch)


@pytest.mark.parametrize("kwargs,match", [
    (dict(search="greedy", coverage_penalty="wu", coverage_beta=0.2), r"coverage_penalty: .*beam"),
    (dict(search="beam", beam_size=2, coverage_penalty="wu"), r"coverage_beta: 0.0 with coverage_penalty=wu"),
    (dict(search="beam", beam_size=2, coverage_beta=0.2), r"coverage_beta: 0.2 with coverage_penalty=none"),
    (dict(search="beam", beam_size=2, coverage_penalty="gnmt", coverage_beta=0.2), r"'gnmt' is not one of none, wu"),
])
def test_bad_penalty_settings_are_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        DecodeConfig(**kwargs)
