"""Reads a local JSONL corpus split into (source, target) string pairs.

Errors name the file and line; empty sides are counted, logged and skipped.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


class DataError(ValueError):
    """A corpus file is missing or malformed; the message names file and line."""


def split_path(directory: str, split: str) -> Path:
    for name in (f"{split}.jsonl", f"{split}.jsonl.gz"):
        p = Path(directory).expanduser() / name
        if p.exists():
            return p
    raise DataError(f"data.dir: no {split}.jsonl or {split}.jsonl.gz in {Path(directory).expanduser().resolve()}")


def read_pairs(directory: str, split: str, source: str, target: str) -> list[tuple[str, str]]:
    path = split_path(directory, split)
    opener = gzip.open if path.suffix == ".gz" else open
    pairs, empty = [], 0
    with opener(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{path}:{n}: invalid UTF-8 ({e.reason} at byte {e.start})") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{n}: invalid JSON ({e.msg})") from None
            for field in (source, target):
                if field not in obj:
                    raise DataError(f"{path}:{n}: missing field '{field}' (fields: {', '.join(sorted(obj))})")
            s, t = str(obj[source]).strip(), str(obj[target]).strip()
            if not s or not t:
                empty += 1
                continue
            pairs.append((s, t))
    if empty:
        log.warning("%s: skipped %d examples with an empty source or target", path, empty)
    if not pairs:
        raise DataError(f"{path}: no examples")
    return pairs


def fingerprint(directory: str, split: str, source: str, target: str) -> str:
    """Content hash of a split's file and the fields read from it."""
    h = hashlib.sha256(f"{source}\0{target}\0".encode())
    h.update(split_path(directory, split).read_bytes())
    return h.hexdigest()[:16]
