"""Analytic FLOPs against counts worked out by hand (1 multiply-add = 2 FLOPs)."""
import pytest

from research.benchmarks import flops
from research.benchmarks.flops import Shape, train_flops

KINDS = ("rnn", "cnn", "transformer")


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


def test_output_projection_at_bench_shape():
    assert flops.output_projection(64, 32, 256, 8000) == 2 * 64 * 32 * 256 * 8000 == 8_388_608_000


def test_whole_transformer_train_step_by_hand():
    s = dict(batch=1, src_len=2, tgt_len=2, d_model=2, d_ff=4, layers=1, vocab=3)
    dense_2x2 = 2 * 2 * 2 * 2  # 2 tokens through a [2, 2] weight
    encoder = 4 * dense_2x2 + 2 * dense_2x2 + 2 * (2 * 2 * 2 * 4)  # projections, attention, FFN = 160
    decoder = (4 * dense_2x2 + 2 * dense_2x2) + (4 * dense_2x2 + 2 * dense_2x2) + 2 * (2 * 2 * 2 * 4)  # 256
    logits = 2 * 2 * 2 * 3
    assert train_flops("transformer", "transformer", s) == 3 * (encoder + decoder + logits) == 1320


def test_memory_width_reaches_the_decoder():
    # A bidirectional RNN memory is 2*hidden wide: cross-attention K/V cost twice as much.
    narrow = flops.transformer_decoder_layer(2, 3, 3, 4, 8, memory_width=4)
    wide = flops.transformer_decoder_layer(2, 3, 3, 4, 8, memory_width=8)
    assert wide - narrow == 2 * flops.dense(2 * 3, 4, 4)


@pytest.mark.parametrize("enc", KINDS)
@pytest.mark.parametrize("dec", KINDS)
def test_every_pair_counts(enc, dec):
    total = train_flops(enc, dec)
    assert total % 3 == 0 and total > 3 * flops.output_projection(64, 32, 256, 8000)


def test_unknown_names_fail():
    with pytest.raises(KeyError):
        train_flops("lstm", "rnn")
    with pytest.raises(TypeError):
        train_flops("rnn", "rnn", cells="gru")
    with pytest.raises(TypeError):
        train_flops("rnn", "rnn", {"width": 3})
    assert train_flops("rnn", "rnn", Shape(), cell="gru") < train_flops("rnn", "rnn", Shape(), cell="lstm")
