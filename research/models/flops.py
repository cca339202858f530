"""Analytic training FLOPs of a model at a batch shape: the numerator of MFU and the unit of `trainer.budget=flops`.

One count for the benchmark (model FLOPs utilisation) and for training
(compute-matched budgets, the cumulative `flops` of metrics.jsonl), so a
curve drawn against FLOPs and a benchmark row use the same numbers.

Convention (the usual one for MFU, e.g. the PaLM appendix):
  * Only matmuls and einsums are counted; one multiply-add is 2 FLOPs, so a
    dense layer costs 2 * tokens * d_in * d_out. Softmax, layer norm,
    activations, gates' elementwise maths, dropout, embedding gathers and the
    optimizer update are left out: they are memory-bound and small.
  * A train step is 3x the forward matmuls (the backward pass computes one
    gradient for the activations and one for the weights, each as large as
    the forward). Rematerialisation (`trainer.remat`) is not counted: model
    FLOPs, not hardware FLOPs, so a budget does not depend on a memory setting.
  * Every position of the batch SHAPE is counted, padding included: XLA
    computes the padded positions too, and what a budget measures is work
    done. Causal self-attention is counted in full (T x T) for the same reason.
  * Attention heads do not change the count (heads x d_head = d_model), so
    the layer functions do not take them.

The layer functions return FORWARD FLOPs of a whole batch. `train_flops`
reads the widths from an `Architecture` (the registry names and frozen
configs a run builds); an encoder or decoder without an entry in
`ENCODER_FLOPS` / `DECODER_FLOPS` fails with a message naming this file.
"""
from __future__ import annotations

from typing import Any, Callable

TRAIN_MULTIPLIER = 3  # forward + backward (activation and weight gradients)
GATES = {"elman": 1, "gru": 3, "lstm": 4}  # matmul blocks per recurrent cell


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


def rnn_attention(batch: int, src_len: int, tgt_len: int, hidden: int, memory_width: int, kind: str, score: str = "general",
                  coverage: bool = False) -> int:
    """Attention of one query per target step over the memory.

    The memory-side projection (bahdanau, general, and dot when the widths
    differ) runs once per source position, not per step, as in our decoder;
    the coverage term w_c c_i (decoder.coverage) once per (step, source) pair.
    """
    if kind == "none":
        return 0
    n, m = batch * tgt_len, batch * src_len
    if coverage:
        return (dense(n * src_len, 1, hidden)
                + rnn_attention(batch, src_len, tgt_len, hidden, memory_width, kind, score))
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
                cell: str, attention: str, score: str, input_feeding: bool, coverage: bool = False) -> int:
    """Bridge, stacked cells, attention, combine (tanh W [h; ctx]) and the
    projection to d_model when hidden differs."""
    g_state = 2 if cell == "lstm" else 1  # the bridge makes h (and c)
    bridge = layers * g_state * dense(batch, memory_width, hidden)
    first_in = d_model + (hidden if input_feeding else 0)
    cells = sum(rnn_layer(batch, tgt_len, w, hidden, cell) for w in [first_in] + [hidden] * (layers - 1))
    n = batch * tgt_len
    attend = rnn_attention(batch, src_len, tgt_len, hidden, memory_width, attention, score, coverage)
    context = hidden if attention == "multihead" else memory_width  # multi-head attention outputs its own width
    combine = dense(n, hidden + context, hidden) if attention != "none" else 0
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
    """Causal gated convolutions with attention in every layer, as research/models/decoders/cnn.py
    computes it: the query is the layer state plus a projection of the target embedding
    (d_model -> C), and the attention is a one-head MultiHeadAttention of width C (Q and O
    projections per target position, K and V projected from the memory once per layer)."""
    n, m = batch * tgt_len, batch * src_len
    attention = (2 * dense(n, channels, channels) + 2 * dense(m, memory_width, channels)
                 + attention_core(batch, tgt_len, src_len, channels))
    per_layer = conv_glu_layer(batch, tgt_len, channels, kernel) + dense(n, d_model, channels) + attention
    return dense(n, d_model, channels) + layers * per_layer + dense(n, channels, d_model)


# --- output ---------------------------------------------------------------

def output_projection(batch: int, tgt_len: int, d_model: int, vocab: int) -> int:
    """Logits: d_model x vocab per target token (tied or not, it is one matmul)."""
    return dense(batch * tgt_len, d_model, vocab)


# --- dispatch by registry name ------------------------------------------
# Each entry reads the component's own frozen config (research/models/encoders/<name>.py, decoders/<name>.py).

# (config, d_model, batch, source length) -> forward FLOPs
ENCODER_FLOPS: dict[str, Callable[[Any, int, int, int], int]] = {
    "rnn": lambda c, d, b, s: rnn_encoder(b, s, d, c.hidden_size, c.num_layers, c.cell, c.bidirectional),
    "cnn": lambda c, d, b, s: cnn_encoder(b, s, d, c.channels, c.kernel_size, c.num_layers),
    "transformer": lambda c, d, b, s: c.num_layers * transformer_encoder_layer(b, s, d, c.d_ff),
}

# (config, d_model) -> width of the memory the encoder hands to the decoder
MEMORY_WIDTH: dict[str, Callable[[Any, int], int]] = {
    "rnn": lambda c, d: c.hidden_size * (2 if c.bidirectional else 1),
    "cnn": lambda c, d: d,
    "transformer": lambda c, d: d,
}

# (config, d_model, batch, source length, target length, memory width) -> forward FLOPs
DECODER_FLOPS: dict[str, Callable[[Any, int, int, int, int, int], int]] = {
    "rnn": lambda c, d, b, s, t, mem: rnn_decoder(b, s, t, d, c.hidden_size, c.num_layers, mem, c.cell,
                                                  c.attention, c.score, c.input_feeding, c.coverage),
    "cnn": lambda c, d, b, s, t, mem: cnn_decoder(b, s, t, d, c.channels, c.kernel_size, c.num_layers, mem),
    "transformer": lambda c, d, b, s, t, mem: c.num_layers * transformer_decoder_layer(b, s, t, d, c.d_ff, mem),
}


def _entry(table: dict, kind: str, name: str):
    if name not in table:
        raise KeyError(f"{kind} '{name}' has no FLOP count; add one to {kind.upper()}_FLOPS in research/models/flops.py "
                       f"(counted: {', '.join(sorted(table))})")
    return table[name]


def pointer_generator(batch: int, source_len: int, target_len: int, d_model: int, memory: int) -> int:
    """The pointer-generator's matmuls (research/models/layers/pointer_generator.py): the context, attention [T, S] times
    memory [S, D_mem], and the gate, [d_model + D_mem + d_model] -> 1, at every target position. The scatter
    onto the vocabulary adds, it does not multiply."""
    return dense(batch * target_len, source_len, memory) + dense(batch * target_len, 2 * d_model + memory, 1)


def forward_flops(arch: Any, batch: int, source_len: int, target_len: int) -> int:
    """Forward matmul FLOPs of one [batch, source_len] -> [batch, target_len] batch of `arch`
    (a `seq2seq.Architecture`): encoder + decoder + output projection (+ copy attention with model.pointer_generator)."""
    d = arch.model.d_model
    encoder = _entry(ENCODER_FLOPS, "encoder", arch.encoder)(arch.encoder_config, d, batch, source_len)
    memory = MEMORY_WIDTH[arch.encoder](arch.encoder_config, d)
    decoder = _entry(DECODER_FLOPS, "decoder", arch.decoder)(arch.decoder_config, d, batch, source_len, target_len, memory)
    copied = pointer_generator(batch, source_len, target_len, d, memory) if getattr(arch.model, "pointer_generator", False) else 0
    return encoder + decoder + copied + output_projection(batch, target_len, d, arch.target_vocab)


def train_flops(arch: Any, batch: int, source_len: int, target_len: int) -> int:
    """FLOPs of one train step on a batch of that shape (forward + backward = 3 x forward matmuls)."""
    return TRAIN_MULTIPLIER * forward_flops(arch, batch, source_len, target_len)
