"""Pretrained word vectors in the embeddings, and frozen embeddings (`model.embeddings`).

`model.embeddings.pretrained=PATH` reads a GloVe or word2vec text file
(research/vectors/files.py) and gives each piece of the tokenizer the vector of
the same unit: the piece itself, or the piece without SentencePiece's
word-boundary marker "▁" (so vectors of plain words fit the pieces that are
whole words). Pieces found nowhere, and the four special ids, keep their
random initialisation. How many were found is logged and recorded in the
manifest. The rows are written once, into a freshly initialised state; a
resumed run takes its embeddings from its checkpoint.

A width other than `model.d_model` is refused rather than projected: a learned
projection would add d_model x width parameters to one arm of a matched-budget
comparison, and a frozen projected embedding is no longer the vectors loaded.
`python -m research.glove dim=<d_model>` trains vectors of the right width.

`model.embeddings.freeze=true` labels the embedding parameters frozen for the
optimizer (`optim.optimizer(..., frozen=...)`): their update is zero, so
neither Adam nor weight decay moves them and they stay bit for bit as
loaded. With `tie_output` the output layer is that same matrix, so it is
frozen too: the model then predicts with the pretrained vectors as its output
embeddings, and only the encoder, decoder and biases learn.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any

import jax
import numpy as np

from research.data.tokenizer import Tokenizer
from research.models.seq2seq import ModelConfig
from research.registry import ConfigError
from research.vectors import files

log = logging.getLogger(__name__)

MARKER = "\u2581"  # SentencePiece's word-boundary marker
SPECIAL_IDS = 4  # pad, unk, bos, eos: never given a vector


def parameter_names(cfg: ModelConfig) -> dict[str, str]:
    """side -> the embedding's top-level parameter name, for the sides `embeddings.side` chooses.

    One shared embedding lives under "target_embed" and serves both sides.
    """
    if cfg.share_embeddings:
        return {"both": "target_embed"}
    sides = {"source": "source_embed", "target": "target_embed"}
    return sides if cfg.embeddings.side == "both" else {cfg.embeddings.side: sides[cfg.embeddings.side]}


def frozen(cfg: ModelConfig) -> tuple[str, ...]:
    """The top-level parameter names the optimizer must leave as they are (none unless freeze=true)."""
    return tuple(parameter_names(cfg).values()) if cfg.embeddings.freeze else ()


@dataclasses.dataclass(frozen=True)
class Rows:
    """The rows of one embedding that pretrained vectors replace."""

    parameter: str  # top-level parameter name: "target_embed" or "source_embed"
    ids: np.ndarray  # int [n] piece ids that were found
    values: np.ndarray  # float32 [n, d]
    coverage: dict  # what the manifest records


def match(vectors: files.Vectors, pieces: list[str]) -> tuple[np.ndarray, np.ndarray, dict]:
    """(ids, rows, coverage): for each piece past the special ids, its vector, found as the exact unit
    or as the unit without the word-boundary marker (exact first)."""
    index = vectors.index()
    ids, rows, exact, stripped = [], [], 0, 0
    for i, piece in enumerate(pieces):
        if i < SPECIAL_IDS:
            continue
        j = index.get(piece)
        if j is not None:
            exact += 1
        elif piece.startswith(MARKER) and piece[len(MARKER):] in index:
            j = index[piece[len(MARKER):]]
            stripped += 1
        if j is not None:
            ids.append(i)
            rows.append(j)
    considered = len(pieces) - SPECIAL_IDS
    coverage = {"pieces": considered, "found": exact + stripped, "found_exact": exact,
                "found_without_marker": stripped, "not_found": considered - exact - stripped}
    return np.asarray(ids, np.int64), vectors.matrix[np.asarray(rows, np.int64)].reshape(-1, vectors.dim), coverage


def prepare(cfg: ModelConfig, tok: Tokenizer) -> list[Rows]:
    """Reads `cfg.embeddings.pretrained` and matches it to each chosen embedding's pieces; logs the coverage.

    Raises:
      DataError: the file is missing or malformed (file and line named).
      ConfigError: its vectors are not `model.d_model` wide.
    """
    path = cfg.embeddings.pretrained
    vectors = files.read(path)
    if vectors.dim != cfg.d_model:
        raise ConfigError(f"model.embeddings.pretrained: {path} has vectors of width {vectors.dim}, the model's "
                          f"embeddings are model.d_model={cfg.d_model} wide; train vectors of that width "
                          f"(python -m research.glove dim={cfg.d_model} ...) or set model.d_model={vectors.dim}")
    processors = {"both": tok.target, "source": tok.source, "target": tok.target}
    out = []
    for side, parameter in parameter_names(cfg).items():
        model = processors[side]
        pieces = [model.id_to_piece(i) for i in range(model.get_piece_size())]
        ids, values, coverage = match(vectors, pieces)
        coverage = {"file": path, "format": vectors.format, "units": len(vectors.units), **coverage}
        log.info("pretrained %s embedding (%s): %d of %d pieces found in %s (%d exactly, %d without the word-boundary "
                 "marker), %d keep their initialisation", side, parameter, coverage["found"], coverage["pieces"], path,
                 coverage["found_exact"], coverage["found_without_marker"], coverage["not_found"])
        if not coverage["found"]:
            log.warning("%s: no piece of the %s vocabulary has a vector there; is it the right vectors file?", path, side)
        out.append(Rows(parameter, ids, values, coverage))
    return out


def apply(params: Any, rows: list[Rows]) -> Any:
    """`params` with the found rows of each embedding replaced, each leaf kept on its device(s) and sharding."""
    params = dict(params)
    for r in rows:
        leaf = params[r.parameter]["embedding"]
        table = np.array(jax.device_get(leaf))
        table[r.ids] = r.values.astype(table.dtype)
        params[r.parameter] = {**params[r.parameter], "embedding": jax.device_put(table, leaf.sharding)}
    return params


def manifest_entry(rows: list[Rows], cfg: ModelConfig) -> dict:
    """What the manifest records: the file, its coverage per embedding, and whether they were frozen."""
    return {"freeze": cfg.embeddings.freeze, "embeddings": {r.parameter: r.coverage for r in rows}}
