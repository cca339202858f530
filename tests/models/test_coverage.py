"""Coverage (research/models/layers/coverage.py): the vector and loss by hand, the RNN decoder's coverage input,
the training loss it joins, and its refusals."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.data.batch import fill_rows
from research.models.flops import forward_flops
from research.models.interfaces import WithAuxiliary
from research.models.layers import coverage
from research.models.seq2seq import Seq2Seq, architecture
from research.registry import ConfigError
from research.training.losses import token_sums
from tests.conftest import compose_config, tiny_run_config
from tests.helpers.marks import slow_after
from tests.helpers.models import attention, build, encode_batch, init, real_pairs

# Three steps over two source positions, with the running sums and minima worked out by hand.
ATTENTION = [[[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]]]
VECTOR = [[[0.0, 0.0], [0.5, 0.5], [1.4, 0.6]]]  # 0, then a_0, then a_0 + a_1
LOSS = [[0.0, 0.6, 0.8]]  # min(.9, .5) + min(.1, .5); min(.2, 1.4) + min(.8, .6)


def test_vector_and_loss_match_a_hand_computation():
    a = jnp.asarray(ATTENTION, jnp.float32)
    np.testing.assert_allclose(np.asarray(coverage.vector(a)), VECTOR, atol=1e-6)
    np.testing.assert_allclose(np.asarray(coverage.loss(a)), LOSS, atol=1e-6)


@pytest.fixture(scope="module")
def spm_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("coverage")  # one tokenizer for the module's models


def _pair(encoder, decoder, spm_dir, *extra):
    _, tok, model = build(encoder, decoder, spm_dir, "model.tie_output=false", *extra)
    batch = encode_batch(tok, real_pairs(4), 40, 40)
    return model, batch, init(model, batch, seed=1)


@pytest.mark.parametrize("kind", ["bahdanau", "luong"])
@pytest.mark.slow  # `make test-slow`: 2026-12-03 durations, 30-380 s each
def test_the_rnn_decoder_with_a_zero_coverage_weight_is_the_no_coverage_decoder(kind, spm_dir):
    model, batch, params = _pair("transformer", "rnn", spm_dir, f"decoder.attention={kind}", "decoder.coverage=true")
    cell = params["decoder"]["step"]["attention"]
    assert set(cell["coverage"]) == {"kernel"}  # w_c: one weight per key unit, no bias
    plain = Seq2Seq(dataclasses.replace(model.arch, decoder_config=dataclasses.replace(model.arch.decoder_config, coverage=False)))
    without = jax.tree.map(lambda x: x, params)
    del without["decoder"]["step"]["attention"]["coverage"]
    want = np.asarray(plain.apply({"params": without}, batch))
    assert np.abs(np.asarray(model.apply({"params": params}, batch)) - want).max() > 1e-4  # w_c as initialised matters
    params["decoder"]["step"]["attention"]["coverage"]["kernel"] = jnp.zeros_like(cell["coverage"]["kernel"])
    np.testing.assert_array_equal(np.asarray(model.apply({"params": params}, batch)), want)


@pytest.mark.parametrize("encoder,decoder,extra", slow_after(1, [("cnn", "rnn", ("decoder.coverage=true",)),
                                                               ("rnn", "transformer", ()), ("transformer", "cnn", ())]))
def test_the_decoding_cache_sums_the_attention_of_the_steps_so_far(encoder, decoder, extra, spm_dir):
    model, batch, params = _pair(encoder, decoder, spm_dir, *extra)
    tracked = model.clone(track_coverage=True)
    full = attention(model, params, batch)  # [B, T, S]
    lengths = np.asarray(batch["target_segments"] > 0).sum(1)

    enc = jax.jit(lambda p, b: tracked.apply({"params": p}, b, method="encode"))(params, batch)
    cache = jax.jit(lambda p, e: tracked.apply({"params": p}, e, batch["target_in"].shape[1], method="init_cache"))(params, enc)
    step = jax.jit(lambda p, e, c, y: tracked.apply({"params": p}, e, c, y, method="decode_step"))
    sums = []
    for t in range(int(lengths.max())):  # one compiled step, fed the targets
        _, cache = step(params, enc, cache, batch["target_in"][:, t])
        sums.append(np.asarray(cache["coverage"]))
    got = np.stack(sums, 1)
    want = np.cumsum(full, axis=1)
    for row, n in enumerate(lengths):
        np.testing.assert_allclose(got[row, :n], want[row, :n], atol=2e-5)
        # Pads of the source take no attention; each step's attention sums to 1, so after t steps the sum is t.
        assert (got[row, :n][:, np.asarray(batch["source_segments"][row]) == 0] == 0).all()
        np.testing.assert_allclose(got[row, :n].sum(-1), np.arange(1, n + 1), rtol=1e-5)


@pytest.mark.parametrize("encoder,decoder,extra", slow_after(1, [("transformer", "rnn", ("decoder.coverage=true",)),
                                                               ("rnn", "cnn", ("model.pointer_generator=true",)),
                                                               ("cnn", "transformer", ())]))
def test_the_training_loss_adds_lambda_times_the_coverage_loss_at_real_tokens(encoder, decoder, extra, spm_dir):
    model, batch, params = _pair(encoder, decoder, spm_dir, *extra)
    weighted = model.clone(lambda_coverage=0.5)
    train = weighted.apply({"params": params}, batch, deterministic=False)  # dropout is off: only the loss differs
    assert isinstance(train, WithAuxiliary)
    evaluation = weighted.apply({"params": params}, batch)  # deterministic: the logits alone
    assert not isinstance(evaluation, WithAuxiliary)
    np.testing.assert_array_equal(np.asarray(train.logits), np.asarray(evaluation))
    a = attention(model, params, batch).astype(np.float64)
    covered = np.cumsum(a, axis=1) - a  # NumPy's own reference of the module's two functions
    hand = np.minimum(a, covered).sum(-1)[np.asarray(batch["target_segments"]) > 0].sum()
    assert hand > 0.1
    got, want = token_sums(train, batch), token_sums(evaluation, batch)
    np.testing.assert_allclose(float(got["loss"] - want["loss"]), 0.5 * hand, rtol=1e-4)
    assert float(got["nll"]) == float(want["nll"])  # the token loss itself is untouched


@pytest.mark.parametrize("encoder,decoder", slow_after(1, [("rnn", "cnn"), ("cnn", "transformer")]))
def test_a_packed_example_pays_the_coverage_loss_it_pays_alone(encoder, decoder, spm_dir):
    """Its coverage is over its own source segment only (the module docstring's argument, checked)."""
    _, tok, model = build(encoder, decoder, spm_dir)
    model = model.clone(lambda_coverage=1.0)
    pairs = real_pairs(6, max_words=5)
    ids = [(tok.encode_source(s), tok.encode_target(t)) for s, t in pairs]
    packed = {k: jnp.asarray(v) for k, v in fill_rows([ids[:3], ids[3:]], 2, 96, 96).items()}
    unpacked = encode_batch(tok, pairs, 48, 40)
    params = init(model, unpacked)

    def per_example(batch, examples):
        aux = np.asarray(jax.jit(lambda p, b: model.apply({"params": p}, b, deterministic=False).per_token)(params, batch))
        segments = np.asarray(batch["target_segments"])
        return [float(aux[r][segments[r] == s].sum()) for r, s in examples]

    alone = per_example(unpacked, [(i, 1) for i in range(6)])
    assert min(alone) > 0.05
    together = per_example(packed, [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3)])
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-6)


def test_flops_count_the_coverage_term_once_per_step_and_source_position(tmp_path):
    cfg = tiny_run_config("transformer", "rnn", tmp_path)
    plain = architecture(cfg, 50, 50)
    on = dataclasses.replace(plain, decoder_config=dataclasses.replace(plain.decoder_config, coverage=True))
    hidden = plain.decoder_config.hidden_size
    # w_c c_i: a 1 -> hidden matmul per (row, step, source position), 2 FLOPs a multiply-add.
    assert forward_flops(on, 3, 7, 5) - forward_flops(plain, 3, 7, 5) == 2 * 3 * 5 * 7 * hidden


def test_checkpoints_made_before_coverage_keep_their_meta(tmp_path):
    arch = architecture(tiny_run_config("transformer", "rnn", tmp_path), 50, 50)
    assert "coverage" not in arch.meta()["decoder_config"]  # off: the meta of older checkpoints
    on = dataclasses.replace(arch, decoder_config=dataclasses.replace(arch.decoder_config, coverage=True))
    assert on.meta()["decoder_config"]["coverage"] is True


@pytest.mark.parametrize("overrides,match", [
    (["decoder.attention=multihead", "decoder.coverage=true"], r"decoder\.coverage: .*attention=multihead"),
    (["decoder.attention=none", "decoder.coverage=true"], r"decoder\.coverage: .*attention=none"),
    (["decoder.attention=none", "trainer.lambda_coverage=1"], r"trainer\.lambda_coverage: .*decoder\.attention=none"),
    (["trainer.lambda_coverage=-1"], r"trainer\.lambda_coverage: must be >= 0"),
])
def test_coverage_without_an_attention_to_cover_is_refused(overrides, match, tmp_path):
    with pytest.raises(ConfigError, match=match):
        tiny_run_config("transformer", "rnn", tmp_path, *overrides)


def test_the_coverage_loss_is_refused_for_tasks_without_a_source():
    from research import tasks
    from research.config import resolve

    lm = resolve(compose_config(["data=ddtp_summ_en_lm_sample", "decoder=rnn", "trainer.lambda_coverage=1"]))
    with pytest.raises(ConfigError, match=r"trainer\.lambda_coverage: .*task=lm"):
        tasks.get("lm").build_model(lm, None)
