"""A run's tokenizer when the target side is a closed vocabulary (classification labels, tagging tags).

Why one module: a classifier and a tagger both pair the text model (SentencePiece,
research/data/tokenizer.py) for their input with a vocabulary of names for
their output, saved beside it in the run's tokenizer/ folder as JSON. What the
pipeline and the run files ask of a tokenizer (encode_source, encode_target,
the vocabulary sizes, a fingerprint, save and from_folder) is the same for
both, so it lives here once; research/data/labels.py and tags.py say what
their vocabularies are and how their sources are encoded.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from research.data import tokenizer as tokenizers


def save_json(folder: Path, name: str, value: dict) -> Path:
    """Writes `value` to folder/name (a vocabulary file), readable by a person: one key a line."""
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def read_json(folder: Path, name: str, missing: str) -> dict:
    """folder/name read back; FileNotFoundError saying `missing` (what saves it) when it is not there."""
    path = Path(folder) / name
    if not path.exists():
        raise FileNotFoundError(f"{path}: {missing}")
    return json.loads(path.read_text(encoding="utf-8"))


class ClosedVocabTokenizer:
    """The text model's pieces as the source side, `vocab` (with `encode`, `decode`, `to_json`, `save`,
    `__len__` and a class method `read(folder)`) as the target side. Subclasses name the vocabulary's class
    (`VOCAB`) and may encode sources otherwise (a tagger encodes word by word)."""

    VOCAB: Any = None

    def __init__(self, text: tokenizers.Tokenizer, vocab: Any):
        self.text, self.vocab = text, vocab
        self.source = text.source

    @property
    def source_vocab(self) -> int:
        return self.text.source_vocab

    @property
    def target_vocab(self) -> int:
        return len(self.vocab)

    def encode_source(self, source: str) -> list[int]:
        return self.text.encode_source(source)

    def encode_target(self, target: str) -> list[int]:
        return self.vocab.encode(target)

    def decode_target(self, ids) -> str:
        return self.vocab.decode(ids)

    def fingerprint(self) -> str:
        """The text model's fingerprint and the vocabulary's, so a checkpoint cannot load under other names."""
        names = json.dumps(self.vocab.to_json(), sort_keys=True).encode()
        return hashlib.sha256(self.text.fingerprint().encode() + b"\0" + names).hexdigest()[:16]

    def save(self, folder: Path) -> None:
        tokenizers.save(self.text, folder)
        self.vocab.save(folder)

    @classmethod
    def from_folder(cls, folder: Path):
        return cls(tokenizers.from_folder(folder), cls.VOCAB.read(folder))
