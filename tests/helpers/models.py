"""Tiny real-data models and batches for the model and decoding tests."""
from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from research.data import corpus
from research.data.batch import pad_batch
from research.models.seq2seq import Seq2Seq, architecture
from tests.conftest import SAMPLE, tiny_run_config


def sample_splits(cfg):
    """The shipped German-English sample, read the way a run reads it."""
    return corpus.load(cfg.data, ("train", "validation"))


def real_pairs(n: int, max_words: int = 8) -> list[tuple[str, str]]:
    """The first n shipped validation pairs whose sides have at most max_words words."""
    pairs = _validation_pairs()
    short = [p for p in pairs if len(p[0].split()) <= max_words and len(p[1].split()) <= max_words]
    assert len(short) >= n, "the shipped sample has too few short pairs"
    return short[:n]


def _validation_pairs() -> list[tuple[str, str]]:
    with gzip.open(SAMPLE / "validation.jsonl.gz", "rt", encoding="utf-8") as f:
        return [(o["de"], o["en"]) for o in map(json.loads, f)]


def tokenizer(cfg, cache: Path):
    train = corpus.pairs(sample_splits(cfg)["train"])
    return corpus.tokenizer(dataclasses.replace(cfg.tokenizer, cache_dir=str(cache)), train, corpus.fingerprint(train))


def build(encoder: str, decoder: str, tmp_path: Path, *overrides: str, dropout: bool = False):
    """-> (run config, tokenizer, Seq2Seq) for a tiny pair; dropout off unless asked."""
    off = [] if dropout else ["encoder.dropout=0", "decoder.dropout=0"]
    cfg = tiny_run_config(encoder, decoder, tmp_path, *off, *overrides)
    tok = tokenizer(cfg, tmp_path / "spm")
    return cfg, tok, Seq2Seq(architecture(cfg, tok.source_vocab, tok.target_vocab))


def encode_batch(tok, pairs, source_len: int = 32, target_len: int = 32) -> dict:
    """An unpacked batch; fails rather than truncate, so tests compare whole examples."""
    src = [tok.encode_source(s) for s, _ in pairs]
    tgt = [tok.encode_target(t) for _, t in pairs]
    assert max(map(len, src)) < source_len and max(map(len, tgt)) < target_len, "examples would be truncated"
    return {k: jnp.asarray(v) for k, v in pad_batch(src, tgt, source_len, target_len).items()}


def init(model, batch, seed: int = 0):
    return jax.jit(lambda r, b: model.init({"params": r}, b)["params"])(jax.random.PRNGKey(seed), batch)


def attention(model, params, batch):
    """The decoder's attention [B, T, S] over the whole targets of `batch` (the training code path), as NumPy."""
    def run(m, b):
        enc = m.encode(b)
        y = m.target_embed(b["target_in"])
        return m.decoder(enc, y, b["target_segments"], b["target_positions"], deterministic=True)[1]

    tracked = model.clone(track_coverage=True)  # a decoder built to return its attention, same parameters
    return np.asarray(jax.jit(lambda p, b: tracked.apply({"params": p}, b, method=run))(params, batch))
