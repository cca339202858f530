"""Extra pad tokens change neither the loss nor the decoded output."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.decoding.generate import jit_generate
from research.training.losses import token_sums
from tests.conftest import PAIRS
from tests.helpers.marks import slow_after
from tests.helpers.models import build, encode_batch, init, real_pairs


# Every pair, every decoder with copy attention (research/models/layers/pointer_generator.py) after another encoder,
# and the RNN decoder with coverage fed to its attention (decoder.coverage).
WITH_COPY = [("transformer", "rnn"), ("rnn", "cnn"), ("cnn", "transformer")]


# `make test` runs rnn-cnn and cnn-transformer; the other 11 run with `make test-slow` (the 13 took 7 minutes, 2026-12-02).
@pytest.mark.parametrize("encoder,decoder,extra", slow_after(2, [pytest.param(e, d, (), id=f"{e}-{d}") for e, d in PAIRS[:3]]
                         + [pytest.param(e, d, ("model.pointer_generator=true",), id=f"{e}-{d}-copy") for e, d in WITH_COPY]
                         + [pytest.param(e, d, (), id=f"{e}-{d}") for e, d in PAIRS[3:]]
                         + [pytest.param("transformer", "rnn", ("decoder.coverage=true",), id="transformer-rnn-coverage")]))
def test_padding_changes_neither_loss_nor_output(encoder, decoder, extra, tmp_path):
    cfg, tok, model = build(encoder, decoder, tmp_path, *extra)
    pairs = real_pairs(6)
    short = encode_batch(tok, pairs, 48, 40)
    long = encode_batch(tok, pairs, 72, 64)
    params = init(model, short)

    def loss(batch):
        return float(token_sums(model.apply({"params": params}, batch), batch)["loss"])

    assert loss(short) == pytest.approx(loss(long), rel=1e-5)
    gen = jit_generate(model, cfg.decode)
    a, la, sa = jax.device_get(gen(params, short))
    b, lb, sb = jax.device_get(gen(params, long))
    np.testing.assert_array_equal(la, lb)
    for row in range(len(pairs)):
        np.testing.assert_array_equal(a[row, : la[row]], b[row, : lb[row]])
    np.testing.assert_allclose(sa, sb, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("encoder", slow_after(1, ["rnn", "cnn", "transformer"]))
def test_encoder_memory_ignores_padding(encoder, tmp_path):
    from research.models.seq2seq import Seq2Seq

    _, tok, model = build(encoder, "transformer", tmp_path)
    pairs = real_pairs(4)
    short, long = encode_batch(tok, pairs, 48, 40), encode_batch(tok, pairs, 72, 40)
    params = init(model, short)
    enc = lambda b: model.apply({"params": params}, b, method=Seq2Seq.encode)
    es, el = enc(short), enc(long)
    mask = short["source_segments"] > 0
    np.testing.assert_allclose(jnp.where(mask[..., None], es.memory, 0), jnp.where(mask[..., None], el.memory[:, :48], 0), atol=1e-5)
    np.testing.assert_allclose(es.final_state, el.final_state, atol=1e-5)
