"""Tokenization trained on the training split and cached on disk: SentencePiece, or symbols.

`model_type=symbols` (research/data/symbols.py) is the one-id-per-symbol
vocabulary of the diagnostic tasks; bpe and unigram are SentencePiece.

The cache key hashes the training data fingerprint together with every
setting, so a second run with the same data and settings reuses the model
and any change trains a new one.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Iterable

import sentencepiece as spm

from research.data import symbols
from research.data.batch import BOS, EOS, PAD, UNK
from research.data.errors import DataError
from research.registry import ConfigError, check

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TokenizerConfig:
    model_type: str = "bpe"  # bpe | unigram (SentencePiece) | symbols (whitespace-separated, research/data/symbols.py)
    vocab_size: int = 8000  # symbols: 0, the vocabulary is every symbol of the training split
    joint: bool = True  # one vocabulary for source and target (allows model.share_embeddings)
    character_coverage: float = 1.0  # 1.0 keeps every character of these Latin-script corpora
    # true: characters never seen in training become their UTF-8 bytes (256 reserved pieces) instead of <unk>,
    # so encode-then-decode is lossless on normalised text. Off by default: at the small vocabularies of
    # the quick experiments the 256 pieces are a large share (2,000 -> 1,740 learned pieces).
    byte_fallback: bool = False
    max_sentences: int = 300000  # sentences sampled to train SentencePiece
    cache_dir: str = "~/.cache/research/spm"

    def __post_init__(self):
        check(self.model_type in ("bpe", "unigram", "symbols"), "model_type",
              f"'{self.model_type}' is not one of bpe, unigram, symbols")
        if self.model_type == "symbols":
            check(self.vocab_size == 0, "vocab_size", "must be 0 with model_type=symbols: the vocabulary is every "
                  "symbol of the training split")
            check(not self.byte_fallback, "byte_fallback", "is a SentencePiece option; symbols have none")
            return
        special = 4 + (256 if self.byte_fallback else 0)
        check(self.vocab_size > special, "vocab_size",
              f"{self.vocab_size} must exceed the {special} reserved pieces (4 special"
              + (" + 256 bytes with tokenizer.byte_fallback=true)" if self.byte_fallback else ")"))
        check(0.9 <= self.character_coverage <= 1.0, "character_coverage", "must be in [0.9, 1]")
        check(self.max_sentences > 0, "max_sentences", "must be positive")


Processor = spm.SentencePieceProcessor | symbols.Symbols


class Tokenizer:
    """Source and target models (the same one when joint): SentencePiece processors or symbol vocabularies."""

    def __init__(self, source: Processor, target: Processor, paths: tuple[Path, ...]):
        self.source, self.target, self.paths = source, target, paths

    @property
    def source_vocab(self) -> int:
        return self.source.get_piece_size()

    @property
    def target_vocab(self) -> int:
        return self.target.get_piece_size()

    def encode_source(self, text: str) -> list[int]:
        return _encode(self.source, text)

    def encode_target(self, text: str) -> list[int]:
        return _encode(self.target, text)

    def decode_target(self, ids) -> str:
        """Detokenizes ids, stopping at the first EOS and dropping special ids."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i not in (PAD, BOS):
                out.append(i)
        return self.target.decode(out)

    def unknown(self, texts, side: str = "source") -> int:
        """How many units of `texts` the `side` vocabulary has no id for (0 for SentencePiece with byte_fallback)."""
        model = self.source if side == "source" else self.target
        if isinstance(model, symbols.Symbols):
            return sum(model.unknown(texts).values())
        return sum(ids.count(UNK) for ids in (_encode(model, t) for t in texts))

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for p in self.paths:
            h.update(p.read_bytes())
        return h.hexdigest()[:16]


def _encode(sp: Processor, text: str) -> list[int]:
    """`sp.encode(text)`, with an error that says why text that is not Unicode cannot be tokenized.

    A lone surrogate (from a surrogate-escaped command line, say) makes pybind11
    raise "Unable to cast ... to C++ type", which names neither text nor character.
    """
    try:
        return sp.encode(text)
    except RuntimeError:
        bad = re.search("[\ud800-\udfff]", text) if isinstance(text, str) else None
        if bad is None:
            raise
        raise DataError(f"cannot tokenize {text[:40]!r}: the unpaired surrogate {bad.group()!r} at character "
                        f"{bad.start()} is not Unicode text") from None


def _train(texts: Iterable[str], cfg: TokenizerConfig, path: Path) -> None:
    buf = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts), model_writer=buf, model_type=cfg.model_type,
            vocab_size=cfg.vocab_size, character_coverage=cfg.character_coverage, byte_fallback=cfg.byte_fallback,
            input_sentence_size=cfg.max_sentences, shuffle_input_sentence=True,
            pad_id=PAD, unk_id=UNK, bos_id=BOS, eos_id=EOS, minloglevel=2,
        )
    except RuntimeError as e:
        raise ConfigError(f"tokenizer.vocab_size={cfg.vocab_size}: SentencePiece could not train on this corpus: {e}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own: the jobs of a sweep may train the same model at once, and
    # a shared temporary name would let one job's rename pull the file from under another's.
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)  # atomic: a concurrent run never reads a half-written model


def load_or_train(cfg: TokenizerConfig, pairs: list[tuple[str, str]], data_fingerprint: str) -> Tokenizer:
    """Returns the cached tokenizer for (data, settings), training it on `pairs` if absent."""
    key = hashlib.sha256(json.dumps([data_fingerprint, dataclasses.asdict(cfg)], sort_keys=True).encode()).hexdigest()[:16]
    root = Path(os.path.expanduser(cfg.cache_dir))
    sides = {"joint": [t for p in pairs for t in p]} if cfg.joint else {"source": [s for s, _ in pairs], "target": [t for _, t in pairs]}
    paths = {}
    for side, texts in sides.items():
        path = root / f"{key}.{side}{symbols.SUFFIX if cfg.model_type == 'symbols' else '.model'}"
        if path.exists():
            log.info("tokenizer: reusing %s", path)
        elif cfg.model_type == "symbols":
            vocab = symbols.build(texts)
            log.info("tokenizer: %d symbols from %d texts -> %s", len(vocab), len(texts), path)
            symbols.write(vocab, path)
        else:
            log.info("tokenizer: training %s SentencePiece (%d pieces) on %d texts -> %s", cfg.model_type, cfg.vocab_size, len(texts), path)
            _train(texts, cfg, path)
        paths[side] = path
    return from_files(*paths.values())


def _processor(path: Path) -> Processor:
    """A symbol vocabulary (`.symbols`) or a SentencePiece model (anything else), by the file's suffix."""
    path = Path(path)
    return symbols.read(path) if path.suffix == symbols.SUFFIX else spm.SentencePieceProcessor(model_file=str(path))


def from_files(*paths: Path) -> Tokenizer:
    """A Tokenizer from one joint model, or from a source and a target model."""
    if len(paths) not in (1, 2):
        raise ValueError(f"a tokenizer is one joint model or a source and a target model, got {len(paths)} files")
    models = [_processor(p) for p in paths]
    return Tokenizer(models[0], models[-1], tuple(Path(p) for p in paths))


# The names a run directory's `tokenizer/` folder gives the models, by count of files (and kind: the suffix).
_RUN_NAMES = {1: ("joint",), 2: ("source", "target")}
_SUFFIXES = (".model", symbols.SUFFIX)


def save(tok: Tokenizer, folder: Path) -> None:
    """Copies the models into `folder` (a run's `tokenizer/`), so the run is self-contained for evaluation."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for path, name in zip(tok.paths, _RUN_NAMES[len(tok.paths)]):
        shutil.copy(path, folder / (name + Path(path).suffix))


def from_folder(folder: Path) -> Tokenizer:
    """The tokenizer `save` wrote into `folder`."""
    folder = Path(folder)
    for names in _RUN_NAMES.values():
        for suffix in _SUFFIXES:
            if all((folder / (n + suffix)).exists() for n in names):
                return from_files(*(folder / (n + suffix) for n in names))
    raise FileNotFoundError(f"{folder}: no joint.model, nor source.model and target.model "
                            f"(nor their {symbols.SUFFIX} twins)")
