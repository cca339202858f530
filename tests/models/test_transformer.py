"""The transformer encoder and decoder, built from the shared blocks, against a NumPy reference.

The reference is written from the formulas (Vaswani et al. 2017; pre-LN as in
Xiong et al. 2020) and reads the parameters by name, so a block wired in the
wrong order, a norm in the wrong place or a mask that leaks fails here.
"""
from __future__ import annotations

import math

import jax
import numpy as np
import pytest

from research.models.decoders.transformer import TransformerDecoder
from research.models.encoders.transformer import TransformerConfig, TransformerEncoder
from research.models.interfaces import EncoderOutput
from research.models.layers.positions import relative_buckets

B, S, T, D, H = 2, 6, 5, 16, 4


def _layer_norm(p, x, eps=1e-6):
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * p["scale"] + p["bias"]


def _attention(p, xq, xkv, mask, bias=0.0):
    """mask [B, Tq, Tk] bool; bias [B, H, Tq, Tk] added to the scores; a query that sees no key gets zeros."""
    proj = lambda x, name: np.einsum("btd,dhk->bthk", x, p[name]["kernel"]) + p[name]["bias"]
    q, k, v = proj(xq, "query"), proj(xkv, "key"), proj(xkv, "value")
    scores = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(q.shape[-1]) + bias
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


def _t5_bucket(distance, buckets, max_distance, bidirectional=True):
    """One key-minus-query distance's bucket, from T5's rule (Raffel et al. 2020), in float64 scalars: half the
    buckets for each side, or (one-sided, a causal decoder's) all for keys at or before the query."""
    if bidirectional:
        half = buckets // 2
        side = half if distance > 0 else 0
        far = abs(distance)
    else:
        half, side, far = buckets, 0, max(-distance, 0)
    exact = half // 2
    if far < exact:
        return side + far
    return side + min(exact + int(math.log(far / exact) / math.log(max_distance / exact) * (half - exact)), half - 1)


def _relative_bias(table, pos, c, bidirectional=True):
    """[B, H, T, T]: each query-key pair's bucket looked up one at a time."""
    b, t = pos.shape
    bias = np.zeros((b, table.shape[1], t, t))
    for r, q, k in np.ndindex(b, t, t):
        bias[r, :, q, k] = table[_t5_bucket(int(pos[r, k] - pos[r, q]), c.relative_buckets, c.relative_max_distance, bidirectional)]
    return bias


def _encoder_reference(p, c, x, seg, pos):
    relative = c.positions == "relative"
    x = x * np.sqrt(D) + (0.0 if relative else _sinusoidal(pos, D))
    bias = _relative_bias(p["relative_bias"]["bias"], pos, c) if relative else 0.0
    mask = _segment_mask(seg, seg)
    for i in range(c.num_layers):
        x = _sublayer(c.norm, p[f"attn_block{i}"]["norm"], x, lambda h: _attention(p[f"self_attn{i}"], h, h, mask, bias))
        x = _sublayer(c.norm, p[f"ffn_block{i}"]["norm"], x, lambda h: _ffn(p[f"ffn{i}"], h))
    return _layer_norm(p["final_norm"], x) if c.norm == "pre" else x


def _decoder_reference(p, c, memory, src_seg, y, seg, pos):
    relative = c.positions == "relative"
    x = y * np.sqrt(D) + (0.0 if relative else _sinusoidal(pos, D))
    bias = _relative_bias(p["relative_bias"]["bias"], pos, c, bidirectional=False) if relative else 0.0
    causal = _segment_mask(seg, seg) & np.tril(np.ones((T, T), bool))[None]
    cross = _segment_mask(seg, src_seg)
    for i in range(c.num_layers):
        self_attend = lambda h: _attention(p[f"self_attn{i}"], h, h, causal, bias)
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


@pytest.mark.parametrize("buckets,max_distance", [(32, 128), (8, 20)])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_relative_buckets_follow_t5s_rule(buckets, max_distance, bidirectional):
    distances = np.arange(-300, 301)
    got = np.asarray(relative_buckets(distances, buckets, max_distance, bidirectional))
    np.testing.assert_array_equal(got, [_t5_bucket(int(d), buckets, max_distance, bidirectional) for d in distances])
    if buckets == 32 and bidirectional:  # by hand: 16 a side, exact below 8, then log-spaced up to 128
        by_hand = {0: 0, -1: 1, -7: 7, -8: 8, -16: 10, -64: 14, -127: 15, -300: 15, 1: 17, 7: 23, 8: 24, 16: 26, 300: 31}
        assert {d: int(got[d + 300]) for d in by_hand} == by_hand
    if buckets == 32 and not bidirectional:  # by hand: all 32 for keys before, exact below 16, then log-spaced up to 128
        by_hand = {0: 0, -1: 1, -15: 15, -16: 16, -32: 21, -64: 26, -127: 31, -300: 31, 1: 0, 300: 0}
        assert {d: int(got[d + 300]) for d in by_hand} == by_hand


def _relative(norm="pre"):
    return TransformerConfig(d_model=D, num_layers=2, num_heads=H, d_ff=24, dropout=0.3, norm=norm, positions="relative",
                             relative_buckets=8, relative_max_distance=6)


def _random_bias(params, seed=0):
    """The table starts at zero, where any lookup would pass: random entries make every bucket count."""
    table = params["relative_bias"]["bias"]
    return {**params, "relative_bias": {"bias": np.random.default_rng(seed).normal(size=table.shape).astype(np.float32)}}


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_the_relative_encoder_matches_the_numpy_reference(inputs, norm):
    x, src_seg, src_pos, *_ = inputs
    c = _relative(norm)
    encoder = TransformerEncoder(c)
    params = _random_bias(encoder.init(jax.random.PRNGKey(0), x, src_seg, src_pos)["params"])
    assert "positions" not in params  # no absolute encodings
    enc = encoder.apply({"params": params}, x, src_seg, src_pos)
    as_np = lambda tree: jax.tree.map(lambda a: np.asarray(a, np.float64), tree)
    memory = _encoder_reference(as_np(params), c, x, src_seg, src_pos)
    real = src_seg > 0
    np.testing.assert_allclose(np.asarray(enc.memory)[real], memory[real], atol=2e-5, rtol=1e-5)


def test_the_relative_encoder_sees_distances_and_their_direction_only(inputs):
    """Shifting every position leaves its output alone (sinusoidal positions do not); mirroring a segment's
    tokens does not mirror its outputs, since a key before the query and one after it fall in different buckets."""
    x, src_seg, src_pos, *_ = inputs
    x, seg, pos = x[1:], src_seg[1:], src_pos[1:]  # the packed row: two segments

    def encoder(c, bias):
        module = TransformerEncoder(c)
        params = module.init(jax.random.PRNGKey(0), x, seg, pos)["params"]
        params = _random_bias(params) if bias else params
        return lambda xx, p: np.asarray(module.apply({"params": params}, xx, seg, p).memory)

    relative, sinusoidal = encoder(_relative(), True), encoder(TransformerConfig(d_model=D, num_layers=2, num_heads=H, d_ff=24), False)
    np.testing.assert_allclose(relative(x, pos + 3), relative(x, pos), atol=1e-5)
    assert not np.allclose(sinusoidal(x, pos + 3), sinusoidal(x, pos), atol=1e-3)
    mirrored = x.copy()
    mirrored[0, 2:] = x[0, 2:][::-1]  # the second segment: positions 0..3 at columns 2..5
    assert not np.allclose(relative(mirrored, pos)[0, 2:][::-1], relative(x, pos)[0, 2:], atol=1e-3)


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_the_relative_decoder_matches_the_numpy_reference(inputs, norm):
    """Its self-attention gets the one-sided bias of each query-key pair; cross-attention none (as T5)."""
    x, src_seg, _, y, tgt_seg, tgt_pos = inputs
    # Row 0 one whole segment: distances up to 4, past where one-sided and two-sided buckets first differ (3).
    tgt_seg, tgt_pos = tgt_seg.copy(), tgt_pos.copy()
    tgt_seg[0], tgt_pos[0] = 1, np.arange(T)
    c = _relative(norm)
    decoder = TransformerDecoder(c)
    enc_out = EncoderOutput(memory=x, segments=src_seg, final_state=x[:, 0])
    params = _random_bias(decoder.init(jax.random.PRNGKey(1), enc_out, y, tgt_seg, tgt_pos)["params"])
    assert "positions" not in params and params["relative_bias"]["bias"].shape == (8, H)
    out = decoder.apply({"params": params}, enc_out, y, tgt_seg, tgt_pos)
    as_np = lambda tree: jax.tree.map(lambda a: np.asarray(a, np.float64), tree)
    expected = _decoder_reference(as_np(params), c, x.astype(np.float64), src_seg, y, tgt_seg, tgt_pos)
    real = tgt_seg > 0
    np.testing.assert_allclose(np.asarray(out)[real], expected[real], atol=2e-5, rtol=1e-5)


def test_the_relative_decoder_sees_distances_only(inputs):
    """Shifting every target position leaves the relative decoder's output alone; the sinusoidal decoder's changes."""
    x, src_seg, _, y, tgt_seg, tgt_pos = inputs
    enc_out = EncoderOutput(memory=x, segments=src_seg, final_state=x[:, 0])

    def decoder(c, bias):
        module = TransformerDecoder(c)
        params = module.init(jax.random.PRNGKey(1), enc_out, y, tgt_seg, tgt_pos)["params"]
        params = _random_bias(params) if bias else params
        return lambda p: np.asarray(module.apply({"params": params}, enc_out, y, tgt_seg, p))

    relative, sinusoidal = decoder(_relative(), True), decoder(TransformerConfig(d_model=D, num_layers=2, num_heads=H, d_ff=24), False)
    real = tgt_seg > 0
    np.testing.assert_allclose(relative(tgt_pos + 5)[real], relative(tgt_pos)[real], atol=1e-5)
    assert not np.allclose(sinusoidal(tgt_pos + 5)[real], sinusoidal(tgt_pos)[real], atol=1e-3)
