"""Our transformer+transformer model as PyTorch modules holding OUR weights: the decode peer's model.

`build` loads the Flax parameters of a run into `torch.nn` Linear / LayerNorm /
Embedding modules, with fused projections; `encode` runs the encoder, `start`
projects the memory's cross-attention keys/values once per source (beams of
one row share them, so a reorder never moves them), and `step` decodes one
position with `scaled_dot_product_attention` over a self-attention key/value
cache that grows by one position per step; `reorder` follows the beams.
research/benchmarks/torch_decode.py searches over these. Eager mode, no
`torch.compile`, as `torch_peer.py`; torch is imported inside functions only,
so this module imports without it.

Weights: embeddings [V, d] times sqrt(d); sinusoidal positions tabulated with
our own `positions.sinusoidal`, learned ones copied (the last row reused past
the end, as `Positions`); Flax kernels are [in, out], torch weights [out, in]:
query/key/value [d, H, Dh] -> [H * Dh, d] (self-attention's three fused into
one [3d, d] Linear, cross-attention's key and value into one [2d, d]), out
[H, Dh, d] -> [d, H * Dh]; ffn/Dense_1 is d -> d_ff and ffn/Dense_0 d_ff -> d
(Flax numbers submodules in construction order, the outer Dense first);
LayerNorm eps 1e-6, pre-norm x + f(norm(x)) with a final norm or post-norm
norm(x + f(x)), for the encoder and the decoder each; output tied (h @ E^T,
no bias) or the output Dense.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from research.data.batch import PAD
from research.models.layers.positions import TABLE, sinusoidal

LAYER_NORM_EPSILON = 1e-6  # flax.linen.LayerNorm's default, used by every norm of ours
SINUSOIDAL_ROWS = 1024  # positions tabulated for sinusoidal encodings (as the CTranslate2 export)


@dataclasses.dataclass
class Peer:
    """The model as torch modules; `modules` holds every parameter (for `.to`, counting)."""

    modules: object  # torch.nn.ModuleDict: embeddings, encoder/decoder layers, final norms, output
    source_positions: object  # torch.Tensor [rows, d]
    target_positions: object  # torch.Tensor [rows, d]
    encoder_heads: int
    decoder_heads: int
    encoder_pre_norm: bool
    decoder_pre_norm: bool
    d_model: int
    target_rows: int | None  # positions a learned decoder table encodes; None: sinusoidal, unlimited


@dataclasses.dataclass
class Cache:
    """Decoder state for N rows: self-attention keys/values [N, H, t, Dh] per layer, grown each step,
    and the memory's cross-attention keys/values [N, H, S, Dh] with its padding mask [N, 1, 1, S]."""

    self_k: list
    self_v: list
    cross_k: list
    cross_v: list
    keep: object
    length: int = 0


# --- loading our parameters -------------------------------------------------

def _array(x) -> np.ndarray:
    return np.array(x, dtype=np.float32)  # a writable copy: torch.from_numpy refuses read-only JAX buffers


def _linear(torch, weight: np.ndarray, bias: np.ndarray):
    """nn.Linear holding weight [out, in] and bias [out]."""
    layer = torch.nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
        layer.bias.copy_(torch.from_numpy(bias))
    return layer


def _dense(torch, p):
    """A Flax Dense {kernel [in, out], bias [out]} as nn.Linear."""
    return _linear(torch, _array(p["kernel"]).T, _array(p["bias"]))


def _heads_in(p) -> tuple[np.ndarray, np.ndarray]:
    """A DenseGeneral d -> (H, Dh): kernel [d, H, Dh] -> weight [H * Dh, d], bias [H * Dh]."""
    kernel = _array(p["kernel"])
    return kernel.reshape(kernel.shape[0], -1).T, _array(p["bias"]).reshape(-1)


def _fused(torch, *parts):
    """Several DenseGenerals of one input as one Linear, their outputs concatenated in order."""
    weights, biases = zip(*(_heads_in(p) for p in parts))
    return _linear(torch, np.concatenate(weights), np.concatenate(biases))


def _heads_out(torch, p):
    """The attention output DenseGeneral (H, Dh) -> d: kernel [H, Dh, d] -> weight [d, H * Dh]."""
    kernel = _array(p["kernel"])
    return _linear(torch, kernel.reshape(-1, kernel.shape[-1]).T, _array(p["bias"]))


def _norm(torch, p):
    scale = _array(p["scale"])
    norm = torch.nn.LayerNorm(scale.shape[0], eps=LAYER_NORM_EPSILON)
    with torch.no_grad():
        norm.weight.copy_(torch.from_numpy(scale))
        norm.bias.copy_(torch.from_numpy(_array(p["bias"])))
    return norm


def _ffn(torch, p, d_model: int) -> dict:
    first, second = p["Dense_1"], p["Dense_0"]  # construction order: the outer Dense (d_ff -> d) is Dense_0
    if first["kernel"].shape[0] != d_model or second["kernel"].shape[1] != d_model:
        raise ValueError(f"feed-forward kernels {first['kernel'].shape} and {second['kernel'].shape} are not "
                         f"d -> d_ff -> d for d = {d_model}: the Flax layer names changed")
    return {"ff_in": _dense(torch, first), "ff_out": _dense(torch, second)}


def _encoder_layer(torch, p, i: int, d: int):
    attn = p[f"self_attn{i}"]
    return torch.nn.ModuleDict({
        "qkv": _fused(torch, attn["query"], attn["key"], attn["value"]), "out": _heads_out(torch, attn["out"]),
        "norm1": _norm(torch, p[f"attn_block{i}"]["norm"]),
        **_ffn(torch, p[f"ffn{i}"], d), "norm2": _norm(torch, p[f"ffn_block{i}"]["norm"]),
    })


def _decoder_layer(torch, p, i: int, d: int):
    self_attn, cross = p[f"self_attn{i}"], p[f"cross_attn{i}"]
    return torch.nn.ModuleDict({
        "qkv": _fused(torch, self_attn["query"], self_attn["key"], self_attn["value"]),
        "out": _heads_out(torch, self_attn["out"]), "norm1": _norm(torch, p[f"self_attn_block{i}"]["norm"]),
        "cross_q": _fused(torch, cross["query"]), "cross_kv": _fused(torch, cross["key"], cross["value"]),
        "cross_out": _heads_out(torch, cross["out"]), "norm2": _norm(torch, p[f"cross_attn_block{i}"]["norm"]),
        **_ffn(torch, p[f"ffn{i}"], d), "norm3": _norm(torch, p[f"ffn_block{i}"]["norm"]),
    })


def _positions(torch, side_params, side_cfg):
    """[rows, d] the vectors our model adds at positions 0 .. rows - 1."""
    if side_cfg.positions == "learned":
        table = side_params["positions"][TABLE]["embedding"]
    else:
        table = sinusoidal(np.arange(SINUSOIDAL_ROWS)[None, :], side_cfg.d_model)[0]
    return torch.from_numpy(_array(table))


def build(cfg, params, device: str = "cpu") -> Peer:
    """The peer of a run config (`research.config.RunConfig`) and its Flax params, in eval mode.

    Raises:
      ValueError: the run is not transformer+transformer.
    """
    import torch

    if cfg.encoder != "transformer" or cfg.decoder != "transformer":
        raise ValueError(f"encoder={cfg.encoder} decoder={cfg.decoder}: the PyTorch decode peer is a "
                         "transformer+transformer model only")
    enc, dec = cfg.encoder_config, cfg.decoder_config
    d = cfg.model.d_model
    target = _array(params["target_embed"]["embedding"])
    source = _array(params["source_embed"]["embedding"]) if "source_embed" in params else target
    modules = {
        "target_embed": torch.nn.Embedding.from_pretrained(torch.from_numpy(target)),
        "source_embed": torch.nn.Embedding.from_pretrained(torch.from_numpy(source)),
        "encoder": torch.nn.ModuleList([_encoder_layer(torch, params["encoder"], i, d) for i in range(enc.num_layers)]),
        "decoder": torch.nn.ModuleList([_decoder_layer(torch, params["decoder"], i, d) for i in range(dec.num_layers)]),
    }
    if enc.norm == "pre":
        modules["encoder_final"] = _norm(torch, params["encoder"]["final_norm"])
    if dec.norm == "pre":
        modules["decoder_final"] = _norm(torch, params["decoder"]["final_norm"])
    if not cfg.model.tie_output:
        modules["output"] = _dense(torch, params["output"])
    target_positions = _positions(torch, params["decoder"], dec).to(device)
    return Peer(torch.nn.ModuleDict(modules).to(device).eval(), _positions(torch, params["encoder"], enc).to(device),
                target_positions, enc.num_heads, dec.num_heads, enc.norm == "pre", dec.norm == "pre", d,
                target_positions.shape[0] if dec.positions == "learned" else None)


# --- the model --------------------------------------------------------------

def _split(x, heads: int):
    """[N, T, H * Dh] -> [N, H, T, Dh]."""
    n, t, _ = x.shape
    return x.view(n, t, heads, -1).transpose(1, 2)


def _merge(x):
    """[N, H, T, Dh] -> [N, T, H * Dh]."""
    n, h, t, dh = x.shape
    return x.transpose(1, 2).reshape(n, t, h * dh)


def _residual(x, norm, f, pre: bool):
    return x + f(norm(x)) if pre else norm(x + f(x))


def _ffn_apply(torch, layer, h):
    return layer["ff_out"](torch.relu(layer["ff_in"](h)))


def _embed(torch, peer: Peer, table, positions, ids, start: int = 0):
    """ids [N, T] -> [N, T, d]: scaled embeddings plus the positions start .. start + T - 1."""
    index = torch.arange(start, start + ids.shape[1], device=ids.device).clamp(max=positions.shape[0] - 1)
    return table(ids) * math.sqrt(peer.d_model) + positions[index]


def encode(peer: Peer, source):
    """source [B, S] ids, PAD after each row's EOS -> (memory [B, S, d], keep [B, 1, 1, S] bool)."""
    import torch
    from torch.nn.functional import scaled_dot_product_attention as attend

    m, heads = peer.modules, peer.encoder_heads
    keep = (source != PAD)[:, None, None, :]
    x = _embed(torch, peer, m["source_embed"], peer.source_positions, source)

    def self_attention(layer, h):
        q, k, v = (_split(part, heads) for part in layer["qkv"](h).chunk(3, dim=-1))
        return layer["out"](_merge(attend(q, k, v, attn_mask=keep)))

    for layer in m["encoder"]:
        x = _residual(x, layer["norm1"], lambda h: self_attention(layer, h), peer.encoder_pre_norm)
        x = _residual(x, layer["norm2"], lambda h: _ffn_apply(torch, layer, h), peer.encoder_pre_norm)
    return (m["encoder_final"](x) if peer.encoder_pre_norm else x), keep


def start(peer: Peer, memory, keep, beam_size: int = 1) -> Cache:
    """The decoder cache for memory [B, S, d]: cross keys/values projected once, then tiled to
    [B * beam_size, ...] (row b's copies at b * beam_size + j, as `beam.tile_beams`)."""
    heads = peer.decoder_heads
    cross_k, cross_v = [], []
    for layer in peer.modules["decoder"]:
        k, v = (_split(part, heads).repeat_interleave(beam_size, 0) for part in layer["cross_kv"](memory).chunk(2, -1))
        cross_k.append(k)
        cross_v.append(v)
    n_layers = len(peer.modules["decoder"])
    return Cache([None] * n_layers, [None] * n_layers, cross_k, cross_v, keep.repeat_interleave(beam_size, 0))


def step(peer: Peer, cache: Cache, tokens):
    """tokens [N] the previous tokens -> logits [N, V]; appends this position to `cache`."""
    import torch
    from torch.nn.functional import scaled_dot_product_attention as attend

    m, heads = peer.modules, peer.decoder_heads
    x = _embed(torch, peer, m["target_embed"], peer.target_positions, tokens[:, None], cache.length)  # [N, 1, d]

    def self_attention(i, layer, h):
        q, k, v = (_split(part, heads) for part in layer["qkv"](h).chunk(3, dim=-1))  # [N, H, 1, Dh]
        if cache.self_k[i] is not None:
            k, v = torch.cat([cache.self_k[i], k], 2), torch.cat([cache.self_v[i], v], 2)
        cache.self_k[i], cache.self_v[i] = k, v
        return layer["out"](_merge(attend(q, k, v)))  # the one query sees every cached position

    def cross_attention(i, layer, h):
        q = _split(layer["cross_q"](h), heads)
        return layer["cross_out"](_merge(attend(q, cache.cross_k[i], cache.cross_v[i], attn_mask=cache.keep)))

    pre = peer.decoder_pre_norm
    for i, layer in enumerate(m["decoder"]):
        x = _residual(x, layer["norm1"], lambda h: self_attention(i, layer, h), pre)
        x = _residual(x, layer["norm2"], lambda h: cross_attention(i, layer, h), pre)
        x = _residual(x, layer["norm3"], lambda h: _ffn_apply(torch, layer, h), pre)
    cache.length += 1
    x = (m["decoder_final"](x) if pre else x)[:, 0]
    if "output" in m:
        return m["output"](x)
    return x @ m["target_embed"].weight.T  # tied, no bias


def reorder(cache: Cache, rows) -> None:
    """Keeps self-attention rows `rows` [N]; cross keys/values stay: `rows` never leaves a source's beams."""
    cache.self_k = [k.index_select(0, rows) for k in cache.self_k]
    cache.self_v = [v.index_select(0, rows) for v in cache.self_v]
