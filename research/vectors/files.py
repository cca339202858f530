"""Word-vector files: GloVe text (no header) and word2vec text ("N D" header), gzipped or not.

The format is detected, not configured: a first line of exactly two integers
is word2vec's header, anything else is a GloVe row. Every row is checked as
it is read, so a bad file stops with its path and line (a row of the wrong
width, a value that is not a number, a unit given twice, a header whose
counts the rows do not match, an empty file) instead of loading a shifted or
partial matrix into a model.
"""
from __future__ import annotations

import dataclasses
import gzip
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from research.data.errors import DataError


@dataclasses.dataclass(frozen=True)
class Vectors:
    units: list[str]  # row i's word or piece
    matrix: np.ndarray  # float32 [len(units), dim]
    format: str  # "glove" | "word2vec"
    path: str

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def index(self) -> dict[str, int]:
        return {u: i for i, u in enumerate(self.units)}


def _open(path: str):
    return gzip.open(path, "rt", encoding="utf-8") if str(path).endswith(".gz") else open(path, encoding="utf-8")


def _header(line: str) -> tuple[int, int] | None:
    """(N, D) when the line is word2vec's header: two positive integers and nothing else."""
    fields = line.split()
    if len(fields) == 2 and all(f.isascii() and f.isdigit() for f in fields) and int(fields[1]) > 0:
        return int(fields[0]), int(fields[1])
    return None


def read(path: str | os.PathLike) -> Vectors:
    """The vectors in `path` (.gz read as gzip); DataError naming the file and line on bad input."""
    path = str(path)
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such vectors file")
    units: list[str] = []
    rows: list[list[float]] = []
    seen: dict[str, int] = {}
    header, dim = None, None
    try:
        with _open(path) as f:
            for lineno, line in enumerate(f, 1):
                line = line.rstrip("\n").rstrip("\r")
                if lineno == 1 and _header(line) is not None:
                    header = _header(line)
                    dim = header[1]
                    continue
                if not line.strip():
                    raise DataError(f"{path}:{lineno}: an empty line (every line is a unit and its vector)")
                unit, *values = line.rstrip(" ").split(" ")
                if dim is None:
                    dim = len(values)
                    if dim == 0:
                        raise DataError(f"{path}:{lineno}: {unit!r} has no vector")
                if len(values) != dim:
                    raise DataError(f"{path}:{lineno}: {unit!r} has {len(values)} values, the "
                                    f"{'header' if header else 'first row'} says {dim}")
                try:
                    vector = [float(v) for v in values]
                except ValueError:
                    bad = next(v for v in values if not _is_number(v))
                    raise DataError(f"{path}:{lineno}: {unit!r}: {bad!r} is not a number") from None
                if not all(math.isfinite(v) for v in vector):
                    raise DataError(f"{path}:{lineno}: {unit!r}: a value is not finite (nan or inf)")
                if unit in seen:
                    raise DataError(f"{path}:{lineno}: {unit!r} is given twice (first at line {seen[unit]})")
                seen[unit] = lineno
                units.append(unit)
                rows.append(vector)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except (gzip.BadGzipFile, EOFError, OSError) as e:
        raise DataError(f"{path}: unreadable ({type(e).__name__}: {e})") from None
    if not units:
        raise DataError(f"{path}: an empty vectors file (no rows" + (" after its header)" if header else ")"))
    if header is not None and header[0] != len(units):
        raise DataError(f"{path}:1: the header says {header[0]} rows of {header[1]}, the file has {len(units)} rows")
    return Vectors(units, np.asarray(rows, np.float32), "word2vec" if header else "glove", path)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def write(path: str | os.PathLike, units: Sequence[str], matrix: np.ndarray, header: bool = False) -> None:
    """GloVe text (`header=True`: word2vec's "N D" first line); .gz compresses. Refuses units that would
    not read back as one field (empty, or holding whitespace)."""
    matrix = np.asarray(matrix, np.float32)
    if matrix.ndim != 2 or matrix.shape[0] != len(units):
        raise ValueError(f"{len(units)} units for a matrix of shape {matrix.shape}")
    for u in units:
        if not u or len(u.split()) != 1 or u != u.strip():
            raise ValueError(f"unit {u!r} cannot be written: a unit is one field without whitespace")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    opener = (lambda p: gzip.open(p, "wt", encoding="utf-8")) if str(path).endswith(".gz") else (
        lambda p: open(p, "w", encoding="utf-8"))
    with opener(path) as f:
        if header:
            f.write(f"{matrix.shape[0]} {matrix.shape[1]}\n")
        for unit, row in zip(units, matrix):
            f.write(unit + " " + " ".join(f"{v:.6g}" for v in row.tolist()) + "\n")
