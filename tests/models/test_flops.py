"""The analytic FLOP count (research/models/flops.py) against counts by hand and against the
matmuls the model really runs (its jaxpr), for every encoder-decoder pair."""
import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.extend import core as jcore

from research.data.batch import pad_batch
from research.models import flops
from research.models.decoders import DECODERS
from research.models.decoders.cnn import CNNDecoderConfig
from research.models.decoders.rnn import RNNDecoderConfig
from research.models.encoders import ENCODERS
from research.models.encoders.cnn import CNNConfig
from research.models.encoders.rnn import RNNEncoderConfig
from research.models.encoders.transformer import TransformerConfig
from research.models.seq2seq import Architecture, ModelConfig, Seq2Seq


def arch(encoder, encoder_config, decoder, decoder_config, d_model, vocab):
    return Architecture(encoder, encoder_config, decoder, decoder_config, ModelConfig(d_model=d_model), vocab, vocab)


# --- layers by hand --------------------------------------------------------

def test_transformer_encoder_layer_by_hand():
    # B=2, S=3 -> 6 tokens, d=4, d_ff=8.
    projections = 4 * 6 * 4 * 4  # Q, K, V, O: 384 MACs
    attention = 2 * (2 * 3 * 3 * 4)  # scores + values: 144 MACs
    ffn = 2 * 6 * 4 * 8  # 384 MACs
    assert flops.transformer_encoder_layer(2, 3, 4, 8) == 2 * (projections + attention + ffn) == 1824


def test_lstm_layer_by_hand():
    # B=1, T=2, input 3, hidden 5, 4 gates: (3*20 + 5*20) MACs per step.
    assert flops.rnn_layer(1, 2, 3, 5, "lstm") == 2 * 2 * 160 == 640
    assert flops.rnn_layer(1, 2, 3, 5, "lstm", bidirectional=True) == 1280
    assert flops.rnn_layer(1, 2, 3, 5, "gru") == 640 * 3 // 4
    assert flops.rnn_layer(1, 2, 3, 5, "elman") == 640 // 4


def test_conv_glu_layer_by_hand():
    # 4 positions, a [k*C, 2C] = [6, 4] matmul each.
    assert flops.conv_glu_layer(1, 4, channels=2, kernel=3) == 2 * 4 * 6 * 4 == 192


def test_rnn_attention_scores():
    # B=1, S=3, T=2, H=D_mem=4: scores 2*3*4 and values 2*3*4 MACs.
    dot = flops.rnn_attention(1, 3, 2, 4, 4, "luong", "dot")
    assert dot == 2 * (24 + 24) == 96
    assert flops.rnn_attention(1, 3, 2, 4, 4, "luong", "general") == dot + 2 * 3 * 4 * 4  # keys projected once per source
    assert flops.rnn_attention(1, 3, 2, 4, 8, "luong", "dot") > dot  # unequal widths need the projection


def test_memory_width_reaches_the_decoder():
    # A bidirectional RNN memory is 2*hidden wide: cross-attention K/V cost twice as much.
    narrow = flops.transformer_decoder_layer(2, 3, 3, 4, 8, memory_width=4)
    wide = flops.transformer_decoder_layer(2, 3, 3, 4, 8, memory_width=8)
    assert wide - narrow == 2 * flops.dense(2 * 3, 4, 4)


# --- one small whole model of each kind, by hand (B=1, S=T=2, d_model=2, vocab 3, one layer) -----

def test_transformer_train_step_by_hand():
    cfg = TransformerConfig(d_model=2, num_layers=1, num_heads=1, d_ff=4)
    dense_2x2 = 2 * 2 * 2 * 2  # 2 tokens through a [2, 2] weight
    encoder = 4 * dense_2x2 + 2 * dense_2x2 + 2 * (2 * 2 * 2 * 4)  # projections, attention, FFN = 160
    decoder = (4 * dense_2x2 + 2 * dense_2x2) + (4 * dense_2x2 + 2 * dense_2x2) + 2 * (2 * 2 * 2 * 4)  # 256
    logits = 2 * 2 * 2 * 3
    assert flops.train_flops(arch("transformer", cfg, "transformer", cfg, 2, 3), 1, 2, 2) == 3 * (encoder + decoder + logits) == 1320


def test_rnn_train_step_by_hand():
    enc = RNNEncoderConfig(cell="elman", hidden_size=2, num_layers=1, bidirectional=False)
    dec = RNNDecoderConfig(d_model=2, cell="elman", hidden_size=2, num_layers=1, attention="luong", score="dot",
                           input_feeding=False)
    encoder = 16 + 16  # input and recurrent [2, 2] matmuls over 2 steps
    bridge = 2 * 1 * 2 * 2  # final state [1, 2] -> h0 [1, 2]
    cells = 16 + 16
    attention = 16 + 16  # scores: 2 queries . 2 keys of width 2; values: weights [2] x memory [2, 2]
    combine = 2 * 2 * 4 * 2  # tanh W [h; ctx]: [4] -> [2] at 2 steps
    logits = 2 * 2 * 2 * 3
    assert flops.train_flops(arch("rnn", enc, "rnn", dec, 2, 3), 1, 2, 2) == 3 * (encoder + bridge + cells + attention + combine + logits) == 480


def test_cnn_train_step_by_hand():
    enc = CNNConfig(d_model=2, channels=2, num_layers=1, kernel_size=1)
    dec = CNNDecoderConfig(d_model=2, channels=2, num_layers=1, kernel_size=1)
    d2 = 2 * 2 * 2 * 2  # 2 positions through a [2, 2] weight
    conv = 2 * 2 * 2 * 4  # [k*C, 2C] = [2, 4] per position
    encoder = d2 + conv + d2  # to channels, one gated convolution, back to d_model = 64
    attention = 2 * d2 + 2 * d2 + 2 * d2  # Q and O; K and V from the memory; scores and values = 96
    decoder = d2 + (conv + d2 + attention) + d2  # the layer adds the embedding's query projection = 176
    logits = 2 * 2 * 2 * 3
    assert flops.train_flops(arch("cnn", enc, "cnn", dec, 2, 3), 1, 2, 2) == 3 * (encoder + decoder + logits) == 792


# --- against the model's own matmuls ----------------------------------------

def jaxpr_matmul_flops(jaxpr, times: int = 1) -> int:
    """2 x multiply-adds of every dot_general and convolution in a jaxpr, scan bodies x their length."""
    total = 0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "dot_general":
            (contract, _), _ = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval.shape
            total += times * 2 * int(np.prod(eqn.outvars[0].aval.shape)) * int(np.prod([lhs[i] for i in contract]))
        elif name == "conv_general_dilated":
            rhs, spec = eqn.invars[1].aval.shape, eqn.params["dimension_numbers"].rhs_spec
            per_output = int(np.prod(rhs)) // rhs[spec[0]] // eqn.params["feature_group_count"]
            total += times * 2 * int(np.prod(eqn.outvars[0].aval.shape)) * per_output
        assert name not in ("while", "cond"), f"cannot count through {name}"
        inner = times * (eqn.params["length"] if name == "scan" else 1)
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                if isinstance(sub, jcore.ClosedJaxpr):
                    total += jaxpr_matmul_flops(sub.jaxpr, inner)
                elif isinstance(sub, jcore.Jaxpr):
                    total += jaxpr_matmul_flops(sub, inner)
    return total


D = 8
ENCODER_CONFIGS = {
    "rnn": RNNEncoderConfig(cell="lstm", hidden_size=6, num_layers=2, bidirectional=True),
    "cnn": CNNConfig(d_model=D, channels=10, num_layers=2, kernel_size=3),
    "transformer": TransformerConfig(d_model=D, num_layers=2, num_heads=2, d_ff=12),
}
DECODER_CONFIGS = {
    "rnn": RNNDecoderConfig(d_model=D, cell="gru", hidden_size=6, num_layers=2, attention="luong", score="general"),
    "cnn": CNNDecoderConfig(d_model=D, channels=10, num_layers=2, kernel_size=3),
    "transformer": TransformerConfig(d_model=D, num_layers=2, num_heads=2, d_ff=12),
}


def model_flops(a: Architecture, batch: int, source_len: int, target_len: int) -> int:
    rows = pad_batch([[4, 5, 6]] * batch, [[4, 5]] * batch, source_len, target_len)
    rows = {k: jnp.asarray(v) for k, v in rows.items()}
    model = Seq2Seq(a)
    params = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), rows))["params"]
    return jaxpr_matmul_flops(jax.make_jaxpr(lambda p: model.apply({"params": p}, rows))(params).jaxpr)


@pytest.mark.parametrize("encoder,decoder", list(itertools.product(ENCODER_CONFIGS, DECODER_CONFIGS)))
def test_count_equals_the_matmuls_the_model_runs(encoder, decoder):
    a = arch(encoder, ENCODER_CONFIGS[encoder], decoder, DECODER_CONFIGS[decoder], D, 11)
    assert flops.forward_flops(a, 3, 5, 4) == model_flops(a, 3, 5, 4)


@pytest.mark.parametrize("encoder,decoder", [("rnn", "transformer"), ("transformer", "cnn"), ("cnn", "rnn")])
def test_pointer_generator_counts_equal_the_matmuls_the_model_runs(encoder, decoder):
    a = arch(encoder, ENCODER_CONFIGS[encoder], decoder, DECODER_CONFIGS[decoder], D, 11)
    a = dataclasses.replace(a, model=dataclasses.replace(a.model, pointer_generator=True))
    assert flops.forward_flops(a, 3, 5, 4) == model_flops(a, 3, 5, 4)


@pytest.mark.parametrize("options", [
    dict(cell="elman", attention="bahdanau", input_feeding=False),
    dict(cell="lstm", attention="multihead", num_heads=2),
    dict(cell="lstm", attention="none", hidden_size=D),
    dict(cell="gru", attention="luong", score="dot", hidden_size=12),
])
def test_rnn_decoder_variants_equal_their_matmuls(options):
    dec = RNNDecoderConfig(**{**dict(d_model=D, hidden_size=6, num_layers=2), **options})
    a = arch("transformer", ENCODER_CONFIGS["transformer"], "rnn", dec, D, 11)
    assert flops.forward_flops(a, 2, 4, 3) == model_flops(a, 2, 4, 3)


def test_padded_positions_are_counted():
    a = arch("transformer", ENCODER_CONFIGS["transformer"], "transformer", DECODER_CONFIGS["transformer"], D, 11)
    assert flops.forward_flops(a, 3, 9, 4) > flops.forward_flops(a, 3, 5, 4)  # the same 3 real source tokens


def test_every_registered_component_has_a_count():
    assert set(ENCODERS.names()) == set(flops.ENCODER_FLOPS) == set(flops.MEMORY_WIDTH)
    assert set(DECODERS.names()) == set(flops.DECODER_FLOPS)


def test_a_component_without_a_count_is_named():
    a = arch("lstm", ENCODER_CONFIGS["rnn"], "rnn", DECODER_CONFIGS["rnn"], D, 11)
    with pytest.raises(KeyError, match="encoder 'lstm' has no FLOP count; add one to ENCODER_FLOPS in research/models/flops.py"):
        flops.train_flops(a, 1, 2, 2)
