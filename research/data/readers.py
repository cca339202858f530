"""Reading the local corpus formats line by line, strictly: JSONL, TSV and Moses-style line-aligned files.

Pure Python, no tfds: `research/data/builders.py` prepares these readers' output as tfds array_record, and
the tagged (tagged.py, conll.py) and labelled (labels.py) formats read through `lines`, `json_objects` and
`check_unicode` too. Every problem is a DataError naming the file and line; nothing is skipped silently
(`skip_empty` logs what it drops, and an empty corpus is an error).
"""
from __future__ import annotations

import gzip
import itertools
import json
import logging
import zlib
from typing import Callable, Iterator, Sequence

from research.data.errors import DataError

log = logging.getLogger(__name__)

Pair = tuple[int, str, str]  # (1-based line number, source text, target text)
Advance = Callable[[int], None] | None  # told the bytes of the file read since its last call (a progress bar)


def lines(path: str, advance: Advance = None) -> Iterator[tuple[int, str]]:
    r"""Yields (line number, text without its terminator) of a plain or .gz file, strict UTF-8.

    Lines end at "\n" only (reading bytes, not text, keeps U+2028, U+0085 and
    a lone "\r" inside a line, as JSON and parallel text may hold them); only
    the terminator "\n" or "\r\n" is cut, so other trailing characters stay
    content. A byte-order mark that starts the file (Windows editors and
    spreadsheets write one) is not content either.

    `advance`, if given, is told after each line how many bytes of the file
    (compressed bytes for .gz) have been read since the previous line.
    """
    lineno = 0
    try:
        with open(path, "rb") as file, (gzip.GzipFile(fileobj=file) if path.endswith(".gz") else file) as f:
            done = 0
            for lineno, raw in enumerate(f, 1):
                if advance is not None:
                    now = file.tell()
                    advance(now - done)
                    done = now
                try:
                    text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
                except UnicodeDecodeError as e:
                    raise DataError(f"{path}:{lineno}: invalid UTF-8 (byte {e.start} of the line)") from None
                if not text:  # the file is a byte-order mark and nothing else
                    return
                yield lineno, text[:-2] if text.endswith("\r\n") else text.removesuffix("\n")
            if advance is not None:  # what followed the last line: a gzip trailer
                advance(file.tell() - done)
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:  # a bad header, a cut-off file, a damaged stream
        raise DataError(f"{path}:{lineno + 1}: corrupt gzip data ({e})") from None


def json_objects(path: str, fields: Sequence[str], advance: Advance = None) -> Iterator[tuple[int, dict]]:
    """(line number, object) of every non-blank line of a JSONL file, each a JSON object holding `fields`;
    a DataError naming the file and line otherwise. The one JSONL line reader of every local format."""
    for lineno, text in lines(path, advance):
        if not text.strip():
            continue  # a blank line (often the last) holds no example
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
        except (ValueError, RecursionError) as e:  # an integer over 4300 digits; arrays nested too deep
            raise DataError(f"{path}:{lineno}: invalid JSON ({str(e)[:80]})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
        for field in fields:
            if field not in obj:
                raise DataError(f"{path}:{lineno}: missing field {field!r} (the line has {sorted(obj)})")
        yield lineno, obj


def read_jsonl(path: str, source: str, target: str, advance: Advance = None) -> Iterator[Pair]:
    """One JSON object per line; `source` and `target` name its string fields."""
    for lineno, obj in json_objects(path, (source, target), advance):
        for field in (source, target):
            if not isinstance(obj[field], str):
                raise DataError(f"{path}:{lineno}: field {field!r} is {type(obj[field]).__name__}, not a string")
            check_unicode(obj[field], f"{path}:{lineno}: field {field!r}")
        yield lineno, obj[source], obj[target]


def check_unicode(text: str, where: str) -> None:
    """Raises unless `text` can be written as UTF-8 (as tfds stores it).

    JSON may escape half a surrogate pair ("\\ud800"), which `json` decodes to
    a str that no UTF-8 writer accepts; failing here names the line.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise DataError(f"{where}: an unpaired surrogate {text[e.start]!r} at character {e.start} "
                        "is not Unicode text (a \\ud800-\\udfff escape without its partner)") from None


def column_index(column: str) -> int | None:
    """The index a digits-only column names, else None (ASCII digits: int() rejects "²", which isdigit() accepts)."""
    column = str(column)
    return int(column) if column.isascii() and column.isdigit() else None


def read_tsv(path: str, source: str, target: str, advance: Advance = None) -> Iterator[Pair]:
    """Tab-separated columns, chosen by index ("0", "1": no header) or by header name.

    Cells are split on tabs only, without quoting rules: parallel text is full
    of quote characters that csv's dialects would misread.
    """
    rows = lines(path, advance)
    indices = [column_index(source), column_index(target)]
    if None in indices:
        header = next(rows, None)
        if header is None:
            raise DataError(f"{path}:1: no header line to find columns {source!r}, {target!r} in")
        names = header[1].split("\t")
        for i, column in enumerate((source, target)):
            if indices[i] is None:
                if column not in names:
                    raise DataError(f"{path}:1: missing column {column!r} (the header has {names})")
                indices[i] = names.index(column)
    need = max(indices) + 1
    for lineno, text in rows:
        if not text:
            continue
        cells = text.split("\t")
        if len(cells) < need:
            raise DataError(f"{path}:{lineno}: missing column: the line has {len(cells)} columns, need {need}")
        yield lineno, cells[indices[0]], cells[indices[1]]


def read_moses(source_path: str, target_path: str, advance: Advance = None) -> Iterator[Pair]:
    """Two line-aligned files: line i of one translates line i of the other."""
    for s, t in itertools.zip_longest(lines(source_path, advance), lines(target_path, advance)):
        if s is None or t is None:
            n = count_lines(source_path), count_lines(target_path)
            raise DataError(
                f"{source_path} has {n[0]} lines but {target_path} has {n[1]}: line-aligned files must match "
                f"(line {min(n) + 1} of {source_path if t is None else target_path} has no partner)")
        yield s[0], s[1], t[1]


def count_lines(path: str) -> int:
    return sum(1 for _ in lines(path))


def skip_empty(pairs: Iterator[Pair], where: str) -> Iterator[Pair]:
    """Drops pairs with an empty (or all-space) side, logs how many; an empty result is an error."""
    kept = skipped = 0
    for lineno, s, t in pairs:
        if s.strip() and t.strip():
            kept += 1
            yield lineno, s, t
        else:
            skipped += 1
    if skipped:
        log.warning("%s: skipped %d of %d examples with an empty source or target", where, skipped, kept + skipped)
    if not kept:
        raise DataError(f"{where}: empty corpus: no example with a non-empty source and target")
