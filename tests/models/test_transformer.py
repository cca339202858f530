"""The transformer encoder and decoder, built from the shared blocks, against a NumPy reference.

The reference is written from the formulas (Vaswani et al. 2017; pre-LN as in
Xiong et al. 2020) and reads the parameters by name, so a block wired in the
wrong order, a norm in the wrong place or a mask that leaks fails here.
"""
from __future__ import annotations

import jax
import numpy as np
import pytest

from research.models.decoders.transformer import TransformerDecoder
from research.models.encoders.transformer import TransformerConfig, TransformerEncoder
from research.models.interfaces import EncoderOutput

B, S, T, D, H = 2, 6, 5, 16, 4


def _layer_norm(p, x, eps=1e-6):
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * p["scale"] + p["bias"]


def _attention(p, xq, xkv, mask):
    """mask [B, Tq, Tk] bool; a query that sees no key gets zeros."""
    proj = lambda x, name: np.einsum("btd,dhk->bthk", x, p[name]["kernel"]) + p[name]["bias"]
    q, k, v = proj(xq, "query"), proj(xkv, "key"), proj(xkv, "value")
    scores = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(q.shape[-1])
    scores = np.where(mask[:, None], scores, -np.inf)
    top = np.max(scores, -1, keepdims=True)
    e = np.where(mask[:, None], np.exp(scores - np.where(np.isfinite(top), top, 0.0)), 0.0)
    total = e.sum(-1, keepdims=True)
    weights = np.divide(e, total, out=np.zeros_like(e), where=total > 0)
    ctx = np.einsum("bhqk,bkhd->bqhd", weights, v)
    return np.einsum("bqhd,hdo->bqo", ctx, p["out"]["kernel"]) + p["out"]["bias"]


def _ffn(p, x):
    # FeedForward builds the output Dense first (Dense_0), then the d_ff one it calls first (Dense_1).
    hidden = np.maximum(x @ p["Dense_1"]["kernel"] + p["Dense_1"]["bias"], 0.0)
    return hidden @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"]


def _sinusoidal(positions, dim):
    half = dim // 2
    freq = np.exp(-np.log(10000.0) * np.arange(half) / (half - 1))
    angles = positions[..., None] * freq
    return np.concatenate([np.sin(angles), np.cos(angles)], -1)


def _sublayer(norm, ln, x, f):
    return x + f(_layer_norm(ln, x)) if norm == "pre" else _layer_norm(ln, x + f(x))


def _segment_mask(q_seg, k_seg):
    return (q_seg[:, :, None] == k_seg[:, None, :]) & (k_seg[:, None, :] > 0)


def _encoder_reference(p, c, x, seg, pos):
    x = x * np.sqrt(D) + _sinusoidal(pos, D)
    mask = _segment_mask(seg, seg)
    for i in range(c.num_layers):
        x = _sublayer(c.norm, p[f"attn_block{i}"]["norm"], x, lambda h: _attention(p[f"self_attn{i}"], h, h, mask))
        x = _sublayer(c.norm, p[f"ffn_block{i}"]["norm"], x, lambda h: _ffn(p[f"ffn{i}"], h))
    return _layer_norm(p["final_norm"], x) if c.norm == "pre" else x


def _decoder_reference(p, c, memory, src_seg, y, seg, pos):
    x = y * np.sqrt(D) + _sinusoidal(pos, D)
    causal = _segment_mask(seg, seg) & np.tril(np.ones((T, T), bool))[None]
    cross = _segment_mask(seg, src_seg)
    for i in range(c.num_layers):
        self_attend = lambda h: _attention(p[f"self_attn{i}"], h, h, causal)
        cross_attend = lambda h: _attention(p[f"cross_attn{i}"], h, memory, cross)
        x = _sublayer(c.norm, p[f"self_attn_block{i}"]["norm"], x, self_attend)
        x = _sublayer(c.norm, p[f"cross_attn_block{i}"]["norm"], x, cross_attend)
        x = _sublayer(c.norm, p[f"ffn_block{i}"]["norm"], x, lambda h: _ffn(p[f"ffn{i}"], h))
    return _layer_norm(p["final_norm"], x) if c.norm == "pre" else x


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(0)
    # Row 0: one example with padding; row 1: two packed examples (positions restart).
    src_seg = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 2, 2, 2, 2]], np.int32)
    src_pos = np.array([[0, 1, 2, 3, 0, 0], [0, 1, 0, 1, 2, 3]], np.int32)
    tgt_seg = np.array([[1, 1, 1, 0, 0], [1, 1, 2, 2, 2]], np.int32)
    tgt_pos = np.array([[0, 1, 2, 0, 0], [0, 1, 0, 1, 2]], np.int32)
    x = rng.normal(size=(B, S, D)).astype(np.float32)
    y = rng.normal(size=(B, T, D)).astype(np.float32)
    return x, src_seg, src_pos, y, tgt_seg, tgt_pos


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_encoder_and_decoder_match_the_numpy_reference(inputs, norm):
    x, src_seg, src_pos, y, tgt_seg, tgt_pos = inputs
    c = TransformerConfig(d_model=D, num_layers=2, num_heads=H, d_ff=24, dropout=0.3, norm=norm)
    encoder = TransformerEncoder(c)
    enc_params = encoder.init(jax.random.PRNGKey(0), x, src_seg, src_pos)["params"]
    enc = encoder.apply({"params": enc_params}, x, src_seg, src_pos)
    as_np = lambda tree: jax.tree.map(lambda a: np.asarray(a, np.float64), tree)
    memory = _encoder_reference(as_np(enc_params), c, x, src_seg, src_pos)
    real = src_seg > 0  # pads hold whatever the layers leave there; no real position reads them
    np.testing.assert_allclose(np.asarray(enc.memory)[real], memory[real], atol=2e-5, rtol=1e-5)

    decoder = TransformerDecoder(c)
    enc_out = EncoderOutput(memory=np.asarray(memory, np.float32), segments=src_seg, final_state=x[:, 0])
    dec_params = decoder.init(jax.random.PRNGKey(1), enc_out, y, tgt_seg, tgt_pos)["params"]
    out = decoder.apply({"params": dec_params}, enc_out, y, tgt_seg, tgt_pos)
    expected = _decoder_reference(as_np(dec_params), c, memory, src_seg, y, tgt_seg, tgt_pos)
    real = tgt_seg > 0
    np.testing.assert_allclose(np.asarray(out)[real], expected[real], atol=2e-5, rtol=1e-5)
