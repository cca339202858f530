"""A trained transformer+transformer run as a CTranslate2 model, through CTranslate2's own model specification.

CTranslate2 converts OpenNMT, fairseq, Marian and Hugging Face models, not
ours; its Python specification (`ctranslate2.specs.TransformerSpec`) is the
documented way in for any other framework. The mapping, layer by layer:

  embeddings        target_embed (the one shared table, or source_embed / target_embed), scaled by sqrt(d)
                    as our embed_positions does
  positions         our encodings of positions 0 .. max_len - 1 written out as the encoder's and decoder's
                    `position_encodings` table (sinusoidal: the same formula evaluated here; learned: the table),
                    so CTranslate2 adds exactly the vectors we add
  self-attention    query, key, value fused into one [3d, d] linear, then `out`; cross-attention: query, then
                    key and value fused into one [2d, d] linear, then `out` (flax kernels are [in, out],
                    CTranslate2 weights [out, in])
  feed-forward      flax names the layers in construction order: ffn/Dense_1 is d -> d_ff, ffn/Dense_0 is d_ff -> d
  norms             pre-norm: each block's norm before its sublayer and the final norms; post-norm: after
  output            the target embedding transposed (tie_output), or the output layer's kernel, no bias

Refused with a message: any encoder or decoder other than the transformer
(CTranslate2 has no RNN decoder, its issue #796, and no convolutional one),
separate source and target vocabularies without a joint tokenizer's pieces,
and layer-norm epsilons other than flax's 1e-6 (recorded in the config).
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from research.data import tokenizer as tokenizers
from research.models.layers.positions import TABLE, sinusoidal

log = logging.getLogger(__name__)

LAYER_NORM_EPSILON = 1e-6  # flax.linen.LayerNorm's default, which every norm of ours uses
SPECIAL = ("<pad>", "<unk>", "<s>", "</s>")


class NotExportable(ValueError):
    """The run's model has a part CTranslate2 cannot express."""


def check_exportable(cfg) -> None:
    if cfg.encoder != "transformer" or cfg.decoder != "transformer":
        raise NotExportable(
            f"encoder={cfg.encoder} decoder={cfg.decoder}: CTranslate2 runs Transformer encoders and decoders only "
            "(no RNN decoder, its issue #796, and no convolutional one); export a transformer+transformer run")
    if not cfg.model.tie_output:
        raise NotExportable("model.tie_output=false: this converter writes the tied output layer only")
    if cfg.model.pointer_generator:
        raise NotExportable("model.pointer_generator=true: CTranslate2's Transformer has no copy attention (pointer-generator) "
                            "to write it as; export a run without it")


def _np(x) -> np.ndarray:
    """A writable float32 copy (JAX arrays read back read-only; quantization works in place)."""
    return np.array(x, dtype=np.float32)


def _heads_in(kernel) -> np.ndarray:
    """query/key/value kernel [d, heads, head_dim] -> [heads * head_dim, d]."""
    k = _np(kernel)
    return k.reshape(k.shape[0], -1).T


def _heads_out(kernel) -> np.ndarray:
    """out kernel [heads, head_dim, d] -> [d, heads * head_dim]."""
    k = _np(kernel)
    return k.reshape(-1, k.shape[-1]).T


def _norm(spec, params) -> None:
    spec.gamma, spec.beta = _np(params["scale"]), _np(params["bias"])


def _self_attention(spec, attn) -> None:
    q, k, v = (attn[n] for n in ("query", "key", "value"))
    spec.linear[0].weight = np.concatenate([_heads_in(q["kernel"]), _heads_in(k["kernel"]), _heads_in(v["kernel"])])
    spec.linear[0].bias = np.concatenate([_np(q["bias"]).reshape(-1), _np(k["bias"]).reshape(-1), _np(v["bias"]).reshape(-1)])
    spec.linear[1].weight, spec.linear[1].bias = _heads_out(attn["out"]["kernel"]), _np(attn["out"]["bias"])


def _cross_attention(spec, attn) -> None:
    q, k, v = (attn[n] for n in ("query", "key", "value"))
    spec.linear[0].weight, spec.linear[0].bias = _heads_in(q["kernel"]), _np(q["bias"]).reshape(-1)
    spec.linear[1].weight = np.concatenate([_heads_in(k["kernel"]), _heads_in(v["kernel"])])
    spec.linear[1].bias = np.concatenate([_np(k["bias"]).reshape(-1), _np(v["bias"]).reshape(-1)])
    spec.linear[2].weight, spec.linear[2].bias = _heads_out(attn["out"]["kernel"]), _np(attn["out"]["bias"])


def _ffn(spec, ffn) -> None:
    spec.linear_0.weight, spec.linear_0.bias = _np(ffn["Dense_1"]["kernel"]).T, _np(ffn["Dense_1"]["bias"])
    spec.linear_1.weight, spec.linear_1.bias = _np(ffn["Dense_0"]["kernel"]).T, _np(ffn["Dense_0"]["bias"])


def _positions(side_params, side_cfg, rows: int) -> np.ndarray:
    """Our position encodings of positions 0 .. rows - 1 as one table [rows, d]."""
    if side_cfg.positions == "learned":
        return _np(side_params["positions"][TABLE]["embedding"])
    return _np(sinusoidal(np.arange(rows)[None, :], side_cfg.d_model))[0]


def _relative(side_spec, side_params, side_cfg) -> None:
    """T5's relative positions (no position encodings): our one table [buckets, heads] given to every
    self-attention layer. CTranslate2 buckets distances two-sided in the encoder and one-sided in the decoder,
    as ours does (tests/export checks the scores at distances past the exact buckets)."""
    table = _np(side_params["relative_bias"]["bias"])
    for layer in side_spec.layer:
        layer.self_attention.relative_attention_bias = table
        layer.self_attention.relative_attention_max_distance = np.dtype("int32").type(side_cfg.relative_max_distance)


def build_spec(cfg, params, source_pieces: list[str], target_pieces: list[str], max_positions: int = 1024):
    """The CTranslate2 TransformerSpec of a run's config and parameters (vocabularies registered)."""
    from ctranslate2.specs import TransformerDecoderSpec, TransformerEncoderSpec, TransformerSpec  # noqa: PLC0415  (the optional `serve` extra)

    check_exportable(cfg)
    enc, dec = cfg.encoder_config, cfg.decoder_config
    if enc.num_heads != dec.num_heads or enc.norm != dec.norm:
        raise NotExportable(f"encoder and decoder differ in num_heads ({enc.num_heads}, {dec.num_heads}) or norm "
                            f"({enc.norm}, {dec.norm}); CTranslate2's TransformerSpec has one of each")
    pre = enc.norm == "pre"
    side = lambda make, c, **kw: make(c.num_layers, c.num_heads, pre_norm=pre, relative_attention_bias=c.positions == "relative", **kw)
    spec = TransformerSpec(side(TransformerEncoderSpec, enc), side(TransformerDecoderSpec, dec))
    spec.config.layer_norm_epsilon = LAYER_NORM_EPSILON
    p = params
    target_table = _np(p["target_embed"]["embedding"])
    source_table = _np(p["source_embed"]["embedding"]) if "source_embed" in p else target_table
    spec.encoder.embeddings[0].weight = source_table
    spec.decoder.embeddings.weight = target_table
    spec.encoder.scale_embeddings = spec.decoder.scale_embeddings = True
    e, d = p["encoder"], p["decoder"]
    for side_spec, side_params, c in ((spec.encoder, e, enc), (spec.decoder, d, dec)):
        if c.positions == "relative":
            _relative(side_spec, side_params, c)
        else:
            side_spec.position_encodings.encodings = _positions(side_params, c, c.max_len if c.positions == "learned" else max_positions)
    for i, layer in enumerate(spec.encoder.layer):
        _self_attention(layer.self_attention, e[f"self_attn{i}"])
        _norm(layer.self_attention.layer_norm, e[f"attn_block{i}"]["norm"])
        _ffn(layer.ffn, e[f"ffn{i}"])
        _norm(layer.ffn.layer_norm, e[f"ffn_block{i}"]["norm"])
    for i, layer in enumerate(spec.decoder.layer):
        _self_attention(layer.self_attention, d[f"self_attn{i}"])
        _norm(layer.self_attention.layer_norm, d[f"self_attn_block{i}"]["norm"])
        _cross_attention(layer.attention, d[f"cross_attn{i}"])
        _norm(layer.attention.layer_norm, d[f"cross_attn_block{i}"]["norm"])
        _ffn(layer.ffn, d[f"ffn{i}"])
        _norm(layer.ffn.layer_norm, d[f"ffn_block{i}"]["norm"])
    if pre:
        _norm(spec.encoder.layer_norm, e["final_norm"])
        _norm(spec.decoder.layer_norm, d["final_norm"])
    spec.decoder.projection.weight = target_table  # tied: logits = h @ E^T
    spec.decoder.projection.bias = np.zeros(target_table.shape[0], np.float32)
    spec.register_source_vocabulary(list(source_pieces))
    spec.register_target_vocabulary(list(target_pieces))
    spec.config.unk_token, spec.config.bos_token, spec.config.eos_token = SPECIAL[1], SPECIAL[2], SPECIAL[3]
    return spec


def pieces(processor) -> list[str]:
    """Every piece of a SentencePiece processor in id order; ids 0-3 must be our special pieces."""
    found = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    if tuple(found[:4]) != SPECIAL:
        raise NotExportable(f"the tokenizer's first pieces are {found[:4]}, not {list(SPECIAL)}")
    return found


def export(run, out: Path, quantization: str | None = None) -> Path:
    """Writes `run` (research.run_dir.Run) as a CTranslate2 model into `out`, with its SentencePiece model(s)."""
    spec = build_spec(run.cfg, run.params, pieces(run.tokenizer.source), pieces(run.tokenizer.target))
    spec.validate()
    if quantization:
        spec.optimize(quantization=quantization)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    spec.save(str(out))
    tokenizers.save(run.tokenizer, out)  # joint.model (or source/target.model) beside it: self-contained
    log.info("wrote a CTranslate2 model of %s (step %d, %s) to %s", run.path, run.step, quantization or "float32", out)
    return out


class Engine:
    """Translates raw lines with an exported model: `research.translate engine=ctranslate2 model=DIR`.

    The same line contract as research.translate's own translator: one output
    line per input line, blank lines stay blank without reaching the model,
    n-best hypotheses tab-separated (with their scores first when asked).
    Pieces come from the run's SentencePiece model copied beside the export;
    the source gets its EOS appended, as our encoder sees it, decoding
    starts from <s>, and a hypothesis has at most ceil(max_len_a * source
    length + max_len_b) pieces, EOS included, as ours (decode.max_len_a/b).
    """

    def __init__(self, model_dir: str | Path, beam_size: int = 1, n_best: int = 1, length_penalty: float = 0.0,
                 max_len_a: float = 1.5, max_len_b: float = 10, threads: int = 0):
        import ctranslate2  # noqa: PLC0415  (the optional `serve` extra)

        model_dir = Path(model_dir)
        if not (model_dir / "model.bin").exists():
            raise FileNotFoundError(f"{model_dir}: no CTranslate2 model (model.bin); make one with "
                                    "`python -m research.export ctranslate2 run_dir=... out=DIR`")
        self.tokenizer = tokenizers.from_folder(model_dir)
        self.translator = ctranslate2.Translator(str(model_dir), device="cpu", intra_threads=threads)
        self.options = dict(beam_size=beam_size, num_hypotheses=n_best, length_penalty=length_penalty)
        self.max_len = lambda source_len: max(1, math.ceil(max_len_a * source_len + max_len_b))  # as ours, EOS in
        self._ids = {p: i for i, p in enumerate(pieces(self.tokenizer.target))}

    def _source(self, line: str) -> list[str]:
        sp = self.tokenizer.source
        return [sp.id_to_piece(i) for i in self.tokenizer.encode_source(line)] + [SPECIAL[3]]

    def hypotheses(self, lines: list[str]) -> list[list[tuple[float, str]]]:
        """For each line, its (score, text) hypotheses best first; [] for a blank line."""
        keep = [i for i, line in enumerate(lines) if line.strip()]
        out: list[list[tuple[float, str]]] = [[] for _ in lines]
        sources = {i: self._source(lines[i].strip()) for i in keep}
        by_cap: dict[int, list[int]] = {}
        for i in keep:  # one call per output cap: CTranslate2 takes one cap per batch, ours is per source
            by_cap.setdefault(self.max_len(len(sources[i])), []).append(i)
        for cap, rows in by_cap.items():
            results = self.translator.translate_batch([sources[i] for i in rows], return_scores=True,
                                                      max_decoding_length=cap, **self.options)
            for i, r in zip(rows, results):
                out[i] = [(float(score), self.tokenizer.decode_target([self._ids[t] for t in hyp]))
                          for hyp, score in zip(r.hypotheses, r.scores)]
        return out

    def __call__(self, lines, scores: bool = False) -> list[str]:
        fields = lambda s, text: [f"{s:.4f}", " ".join(text.split())] if scores else [" ".join(text.split())]
        return ["\t".join(f for s, text in hyps for f in fields(s, text)) for hyps in self.hypotheses(list(lines))]
