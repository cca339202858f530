"""Incremental decoding with each decoder's cache equals recomputing the whole prefix.

The uncached reference runs the training code path (`Seq2Seq.decode` over the
full prefix) at every step, so agreement shows that each decoder's
`init_cache`/`step` (transformer keys/values, RNN state and input feed, CNN
window of past inputs) computes the same function as its full-sequence call.
"""
from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from research.data.batch import EOS, PAD
from research.decoding.generate import jit_generate, jit_generate_nbest
from research.decoding.uncached import jit_generate_nbest_uncached, jit_generate_uncached
from tests.helpers.models import build, encode_batch, init, real_pairs

# Every decoder, each after a different encoder.
PAIRS = [("cnn", "rnn"), ("transformer", "cnn"), ("rnn", "transformer")]


@pytest.fixture(scope="module")
def spm_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cached")


def _model(encoder, decoder, spm_dir, *extra):
    # Untied output layer: with tied embeddings a random-init decoder just
    # repeats its input token (the residual path dominates), a weak test.
    cfg, tok, model = build(encoder, decoder, spm_dir, "model.tie_output=false", *extra)
    batch = encode_batch(tok, real_pairs(5), 48, 48)
    # Plain random init: logits of order 1, so float32 rounding (which differs
    # between the two paths' summation orders) stays far below the tolerance.
    params = init(model, batch, seed=1)
    # A relative-position decoder's bias table starts at zero, where a step that dropped or misplaced the bias
    # would still agree: random entries make every distance bucket count.
    if "relative_bias" in params["decoder"]:
        table = params["decoder"]["relative_bias"]["bias"]
        params["decoder"]["relative_bias"]["bias"] = np.random.default_rng(0).normal(size=table.shape).astype(np.float32)
    # Raise the EOS logit so that EOS wins at about a third of the positions:
    # rows then end at different steps, and the EOS handling is exercised.
    # With copy attention the output layer's share of the mixed distribution
    # is p_gen, which starts near 1/2, less than a repeated source piece's
    # copy mass: the gate is moved to p_gen of about 0.9 first (the copy part
    # still shifts every score), and the raise repeated until EOS wins at a
    # quarter of the positions (or five times).
    if "copy_gate" in params:
        params["copy_gate"]["bias"] = params["copy_gate"]["bias"] + 2.0
    real = batch["target_segments"] > 0
    for _ in range(5):
        logits = np.asarray(jax.jit(model.apply)({"params": params}, batch))  # [B, T, V]
        gap = (logits.max(-1) - logits[..., EOS])[real]
        if (gap <= 0).mean() >= 0.25:
            break
        params["output"]["bias"] = params["output"]["bias"].at[EOS].add(float(np.quantile(gap, 0.3)))
    return cfg, model, params, batch


def _check_rows(tokens, lengths):
    """Output convention: EOS only last, PAD after the length."""
    for t, n in zip(tokens, lengths):
        assert (t[n:] == PAD).all()
        assert EOS not in t[: max(n - 1, 0)]


# ... and each with copy attention (research/models/layers/pointer_generator.py): its attention comes from the cache too;
# and the RNN decoder with coverage fed to its attention (decoder.coverage), which the cache carries.
@pytest.mark.parametrize("encoder,decoder,extra", [pytest.param(e, d, (), id=f"{e}-{d}") for e, d in PAIRS]
                         + [pytest.param(e, d, ("model.pointer_generator=true",), id=f"{e}-{d}-copy", marks=pytest.mark.slow)
                            for e, d in PAIRS]  # about a minute each on 2 cores: `make test-slow`
                         + [pytest.param("cnn", "rnn", ("decoder.coverage=true", "model.pointer_generator=true"),
                                         id="cnn-rnn-copy-coverage")]
                         # The transformer decoder with relative positions: each step's bias over its history.
                         + [pytest.param("transformer", "transformer", ("decoder.positions=relative",), id="transformer-transformer-relative")]
                         # Without input feeding the RNN decoder's full-sequence pass runs layer by layer, the
                         # attention over all steps at once (decoders/rnn.py `_layerwise`): each attention kind.
                         + [pytest.param(e, "rnn", ("decoder.input_feeding=false", f"decoder.attention={kind}"),
                                         id=f"{e}-rnn-no-feeding-{kind}", marks=[pytest.mark.slow] if slow else [])
                            for e, kind, slow in (("rnn", "luong", False), ("cnn", "multihead", False),
                                                  ("transformer", "bahdanau", True), ("cnn", "none", True))])
def test_cached_equals_uncached_greedy_and_beam(encoder, decoder, extra, spm_dir):
    cfg, model, params, batch = _model(encoder, decoder, spm_dir, *extra)
    greedy_cfg = dataclasses.replace(cfg.decode, search="greedy", beam_size=1, max_len_a=0.0, max_len_b=10)
    cached = jax.device_get(jit_generate(model, greedy_cfg)(params, batch))
    uncached = jax.device_get(jit_generate_uncached(model, greedy_cfg)(params, batch))
    np.testing.assert_array_equal(cached[0], uncached[0])
    np.testing.assert_array_equal(cached[1], uncached[1])
    np.testing.assert_allclose(cached[2], uncached[2], rtol=1e-5, atol=1e-5)
    _check_rows(*cached[:2])
    # Not a degenerate fixture: the source matters, some rows end at EOS, some run on.
    assert len(set(cached[2].tolist())) > 1, "scores should differ between rows"
    ended = [n for t, n in zip(*cached[:2]) if n and t[n - 1] == EOS]
    assert ended and min(ended) < greedy_cfg.max_len_b, "some rows should stop at EOS before the limit"
    assert max(cached[1]) > 1, "some rows should generate more than EOS"

    beam_cfg = dataclasses.replace(greedy_cfg, search="beam", beam_size=4, n_best=2)
    cached = jax.device_get(jit_generate_nbest(model, beam_cfg)(params, batch))
    uncached = jax.device_get(jit_generate_nbest_uncached(model, beam_cfg)(params, batch))
    np.testing.assert_array_equal(cached.tokens, uncached.tokens)
    np.testing.assert_array_equal(cached.lengths, uncached.lengths)
    np.testing.assert_allclose(cached.scores, uncached.scores, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(cached.log_probs, uncached.log_probs, rtol=1e-5, atol=1e-5)
    assert np.isfinite(cached.scores).all() and (np.diff(cached.scores, axis=1) <= 0).all()
    for n in range(2):
        _check_rows(cached.tokens[:, n], cached.lengths[:, n])
