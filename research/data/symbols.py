"""Symbol vocabularies (`tokenizer=symbols`): whitespace-separated symbols, one id each, no SentencePiece.

The diagnostic tasks (copy, reverse, SCAN, ...) are sequences of symbols
whose identity is the point: "JUMP" must stay one token, and a sub-word
model trained on them would merge frequent pairs into pieces that make
sequence accuracy and lengths meaningless. The vocabulary is every symbol of
the training split; a symbol outside it becomes <unk>, and how many did is
counted (`unknown`) so that a run says so instead of scoring around them.

`Symbols` offers the part of SentencePiece's processor interface the
framework calls (encode, decode, get_piece_size, id_to_piece), so the
`Tokenizer` wraps either. A vocabulary file is one symbol per line, in id
order after the four special ids.
"""
from __future__ import annotations

import collections
import os
from pathlib import Path
from typing import Iterable, Sequence

from research.data.batch import BOS, EOS, PAD, UNK
from research.data.errors import DataError

SPECIAL = {PAD: "<pad>", UNK: "<unk>", BOS: "<s>", EOS: "</s>"}
SUFFIX = ".symbols"


class Symbols:
    """A fixed symbol vocabulary; ids 0-3 are the special pieces, then the symbols in file order."""

    def __init__(self, symbols: Sequence[str], path: Path | None = None):
        self.symbols, self.path = list(symbols), path
        self._ids = {s: i for i, s in enumerate(self.symbols, len(SPECIAL))}

    def encode(self, text: str) -> list[int]:
        return [self._ids.get(s, UNK) for s in text.split()]

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(self.id_to_piece(int(i)) for i in ids)

    def get_piece_size(self) -> int:
        return len(SPECIAL) + len(self.symbols)

    def id_to_piece(self, i: int) -> str:
        return SPECIAL[i] if i in SPECIAL else self.symbols[i - len(SPECIAL)]

    def unknown(self, texts: Iterable[str]) -> collections.Counter:
        """How often each symbol outside the vocabulary occurs in `texts`."""
        return collections.Counter(s for t in texts for s in t.split() if s not in self._ids)


def build(texts: Iterable[str]) -> list[str]:
    """Every symbol of `texts`, most frequent first (ties by the symbol), so ids do not depend on text order."""
    counts = collections.Counter(s for t in texts for s in t.split())
    if not counts:
        raise DataError("tokenizer=symbols: the training split has no symbols to make a vocabulary from")
    clash = sorted(set(counts) & set(SPECIAL.values()))
    if clash:
        raise DataError(f"tokenizer=symbols: the training split uses {clash[0]!r}, the name of a special piece")
    return sorted(counts, key=lambda s: (-counts[s], s))


def write(symbols: Sequence[str], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # a sweep's jobs may write the same one at once
    tmp.write_text("".join(f"{s}\n" for s in symbols), encoding="utf-8")
    tmp.replace(path)  # atomic: a concurrent run never reads half a vocabulary


def read(path: Path) -> Symbols:
    """The vocabulary in `path`; an empty line, a symbol with a space in it or a repeated symbol is an error."""
    path = Path(path)
    seen: dict[str, int] = {}
    text = path.read_text(encoding="utf-8").removesuffix("\n")  # the newline that ends the last line
    for lineno, line in enumerate(text.split("\n") if text else [], 1):
        if not line.strip():
            raise DataError(f"{path}:{lineno}: an empty line: a symbol vocabulary has one symbol on every line")
        if line != line.strip() or len(line.split()) != 1:
            raise DataError(f"{path}:{lineno}: {line!r} is not one symbol (symbols are separated by whitespace)")
        if line in seen:
            raise DataError(f"{path}:{lineno}: {line!r} repeats line {seen[line]}")
        seen[line] = lineno
    if not seen:
        raise DataError(f"{path}: an empty symbol vocabulary")
    return Symbols(list(seen), path)
