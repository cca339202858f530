"""Analytic FLOPs of one TRAIN step, the numerator of model FLOPs utilisation.

Convention (the usual one for MFU, e.g. the PaLM appendix):
  * Only matmuls and einsums are counted; one multiply-add is 2 FLOPs, so a
    dense layer costs 2 * tokens * d_in * d_out. Softmax, layer norm,
    activations, gates' elementwise maths, dropout, embedding gathers and the
    optimizer update are left out: they are memory-bound and small.
  * A train step is 3x the forward matmuls (the backward pass computes one
    gradient for the activations and one for the weights, each as large as
    the forward). Rematerialisation is not counted: MFU, not HFU.
  * Every position is counted as real (benchmark batches have no padding),
    and causal self-attention is counted in full (T x T), as XLA computes it.
  * Attention heads do not change the count (heads x d_head = d_model), so
    the layer functions do not take them.

Every function returns FORWARD FLOPs of a whole batch, except `train_flops`.
Widths that the encoder hands to the decoder (the memory width: 2 x hidden
for a bidirectional RNN) are passed explicitly.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

TRAIN_MULTIPLIER = 3  # forward + backward (activation and weight gradients)
GATES = {"elman": 1, "gru": 3, "lstm": 4}  # matmul blocks per recurrent cell


@dataclasses.dataclass(frozen=True)
class Shape:
    """The benchmark's shape numbers; the defaults are the fixed benchmark shape."""

    batch: int = 64
    src_len: int = 32
    tgt_len: int = 32
    d_model: int = 256
    d_ff: int = 1024
    heads: int = 4
    layers: int = 3  # each of the encoder and the decoder
    vocab: int = 8000
    hidden: int = 256  # recurrent hidden size (per direction)
    kernel: int = 3  # convolution width
    channels: int = 256  # width inside a convolution stack
    dropout: float = 0.1


BENCH_SHAPE = Shape()


@dataclasses.dataclass(frozen=True)
class Options:
    """Architecture choices that change the count; defaults follow our configs."""

    cell: str = "lstm"  # elman | gru | lstm, both RNN encoder and decoder
    bidirectional: bool = True  # RNN encoder
    attention: str = "luong"  # RNN decoder: none | bahdanau | luong | multihead
    score: str = "general"  # luong only: dot | general
    input_feeding: bool = True  # RNN decoder


def dense(tokens: int, d_in: int, d_out: int) -> int:
    """A matmul of `tokens` vectors of width d_in by a [d_in, d_out] weight."""
    return 2 * tokens * d_in * d_out


def attention_core(batch: int, q_len: int, k_len: int, width: int) -> int:
    """Scores (q . k) plus the weighted sum of values, all heads together."""
    return 2 * dense(batch * q_len, k_len, width)


# --- transformer ----------------------------------------------------------

def transformer_encoder_layer(batch: int, src_len: int, d_model: int, d_ff: int) -> int:
    """Q, K, V, O projections, self-attention, and the two FFN matmuls."""
    n = batch * src_len
    return (4 * dense(n, d_model, d_model) + attention_core(batch, src_len, src_len, d_model)
            + dense(n, d_model, d_ff) + dense(n, d_ff, d_model))


def transformer_decoder_layer(batch: int, src_len: int, tgt_len: int, d_model: int, d_ff: int, memory_width: int) -> int:
    """Causal self-attention, cross-attention (K/V from the memory), FFN."""
    n, m = batch * tgt_len, batch * src_len
    self_attn = 4 * dense(n, d_model, d_model) + attention_core(batch, tgt_len, tgt_len, d_model)
    cross = (2 * dense(n, d_model, d_model) + 2 * dense(m, memory_width, d_model)
             + attention_core(batch, tgt_len, src_len, d_model))
    return self_attn + cross + dense(n, d_model, d_ff) + dense(n, d_ff, d_model)


# --- recurrent ------------------------------------------------------------

def rnn_layer(batch: int, seq_len: int, d_in: int, hidden: int, cell: str, bidirectional: bool = False) -> int:
    """Input (W x) and recurrent (U h) matmuls of every gate, every step."""
    g = GATES[cell]
    one_way = dense(batch * seq_len, d_in, g * hidden) + dense(batch * seq_len, hidden, g * hidden)
    return one_way * (2 if bidirectional else 1)


def rnn_encoder(batch: int, src_len: int, d_model: int, hidden: int, layers: int, cell: str, bidirectional: bool) -> int:
    dirs = 2 if bidirectional else 1
    widths = [d_model] + [hidden * dirs] * (layers - 1)
    return sum(rnn_layer(batch, src_len, w, hidden, cell, bidirectional) for w in widths)


def rnn_attention(batch: int, src_len: int, tgt_len: int, hidden: int, memory_width: int, kind: str, score: str = "general") -> int:
    """Attention of one query per target step over the memory.

    The memory-side projection (bahdanau, general, and dot when the widths
    differ) runs once per source position, not per step, as in our decoder.
    """
    if kind == "none":
        return 0
    n, m = batch * tgt_len, batch * src_len
    if kind == "multihead":
        return (2 * dense(n, hidden, hidden) + 2 * dense(m, memory_width, hidden)
                + attention_core(batch, tgt_len, src_len, hidden))
    project_keys = not (kind == "luong" and score == "dot" and memory_width == hidden)
    keys = dense(m, memory_width, hidden) if project_keys else 0
    values = dense(n, src_len, memory_width)  # weights [S] x memory [S, D_mem] per step
    if kind == "bahdanau":  # W_q q, then v^T tanh(.) is a width-1 matmul per (step, source) pair
        return keys + dense(n, hidden, hidden) + dense(n * src_len, hidden, 1) + values
    return keys + dense(n, src_len, hidden) + values  # luong: q . k


def rnn_decoder(batch: int, src_len: int, tgt_len: int, d_model: int, hidden: int, layers: int, memory_width: int,
                cell: str, attention: str, score: str, input_feeding: bool) -> int:
    """Bridge, stacked cells, attention, combine (tanh W [h; ctx]) and the
    projection to d_model when hidden differs."""
    g_state = 2 if cell == "lstm" else 1  # the bridge makes h (and c)
    bridge = layers * g_state * dense(batch, memory_width, hidden)
    first_in = d_model + (hidden if input_feeding else 0)
    cells = sum(rnn_layer(batch, tgt_len, w, hidden, cell) for w in [first_in] + [hidden] * (layers - 1))
    n = batch * tgt_len
    attend = rnn_attention(batch, src_len, tgt_len, hidden, memory_width, attention, score)
    combine = dense(n, hidden + memory_width, hidden) if attention != "none" else 0
    to_model = dense(n, hidden, d_model) if hidden != d_model else 0
    return bridge + cells + attend + combine + to_model


# --- convolutional (ConvS2S) ---------------------------------------------

def conv_glu_layer(batch: int, seq_len: int, channels: int, kernel: int) -> int:
    """One gated convolution: a [kernel * C, 2C] matmul per position (GLU halves it after)."""
    return dense(batch * seq_len, kernel * channels, 2 * channels)


def cnn_encoder(batch: int, src_len: int, d_model: int, channels: int, kernel: int, layers: int) -> int:
    n = batch * src_len
    stack = layers * conv_glu_layer(batch, src_len, channels, kernel)
    return dense(n, d_model, channels) + stack + dense(n, channels, d_model)


def cnn_decoder(batch: int, src_len: int, tgt_len: int, d_model: int, channels: int, kernel: int, layers: int, memory_width: int) -> int:
    """Causal gated convolutions with attention in every layer (fairseq fconv
    layout: the state is projected C -> memory width, attends over the
    memory, and the context is projected back to C)."""
    n = batch * tgt_len
    per_layer = (conv_glu_layer(batch, tgt_len, channels, kernel) + dense(n, channels, memory_width)
                 + attention_core(batch, tgt_len, src_len, memory_width) + dense(n, memory_width, channels))
    return dense(n, d_model, channels) + layers * per_layer + dense(n, channels, d_model)


# --- output ---------------------------------------------------------------

def output_projection(batch: int, tgt_len: int, d_model: int, vocab: int) -> int:
    """Logits: d_model x vocab per target token (tied or not, it is one matmul)."""
    return dense(batch * tgt_len, d_model, vocab)


# --- dispatch -------------------------------------------------------------

MEMORY_WIDTH: dict[str, Callable[[Shape, Options], int]] = {
    "rnn": lambda s, o: s.hidden * (2 if o.bidirectional else 1),
    "cnn": lambda s, o: s.d_model,
    "transformer": lambda s, o: s.d_model,
}

ENCODERS: dict[str, Callable[[Shape, Options], int]] = {
    "rnn": lambda s, o: rnn_encoder(s.batch, s.src_len, s.d_model, s.hidden, s.layers, o.cell, o.bidirectional),
    "cnn": lambda s, o: cnn_encoder(s.batch, s.src_len, s.d_model, s.channels, s.kernel, s.layers),
    "transformer": lambda s, o: s.layers * transformer_encoder_layer(s.batch, s.src_len, s.d_model, s.d_ff),
}

# Decoders receive the memory width of whichever encoder they are paired with.
DECODERS: dict[str, Callable[[Shape, Options, int], int]] = {
    "rnn": lambda s, o, mem: rnn_decoder(s.batch, s.src_len, s.tgt_len, s.d_model, s.hidden, s.layers, mem,
                                         o.cell, o.attention, o.score, o.input_feeding),
    "cnn": lambda s, o, mem: cnn_decoder(s.batch, s.src_len, s.tgt_len, s.d_model, s.channels, s.kernel, s.layers, mem),
    "transformer": lambda s, o, mem: s.layers * transformer_decoder_layer(s.batch, s.src_len, s.tgt_len, s.d_model, s.d_ff, mem),
}


def forward_flops(encoder_kind: str, decoder_kind: str, shape: Shape | dict = BENCH_SHAPE, **options) -> int:
    """Forward matmul FLOPs of one batch: encoder + decoder + output projection.

    `shape` may be a dict of `Shape` fields and `options` are `Options`
    fields; an unknown key raises TypeError rather than being ignored.
    """
    s = Shape(**shape) if isinstance(shape, dict) else shape
    o = Options(**options)
    for kind, table in ((encoder_kind, ENCODERS), (decoder_kind, DECODERS)):
        if kind not in table:
            raise KeyError(f"unknown kind '{kind}'; choose one of {sorted(table)}")
    mem = MEMORY_WIDTH[encoder_kind](s, o)
    return (ENCODERS[encoder_kind](s, o) + DECODERS[decoder_kind](s, o, mem)
            + output_projection(s.batch, s.tgt_len, s.d_model, s.vocab))


def train_flops(encoder_kind: str, decoder_kind: str, shape: Shape | dict = BENCH_SHAPE, **options) -> int:
    """FLOPs of one train step (forward + backward = 3 x forward matmuls)."""
    return TRAIN_MULTIPLIER * forward_flops(encoder_kind, decoder_kind, shape, **options)
