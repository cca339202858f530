"""tfds builders for corpora a user brings, and `load_splits`, the one entry point.

A local corpus is JSONL, TSV or Moses-style line-aligned text. Each is prepared
once into `tfds_dir` as array_record, the format tfds writes and reads without
TensorFlow with random access, and read back from there on later runs. The
prepared data lives in `{tfds_dir}/{format}_corpus/{name}-{fingerprint}/1.0.0`;
the fingerprint covers the input files' paths, sizes and mtimes and the
settings, so an edited corpus is prepared again instead of stale data reused.

Order is kept (`disable_shuffling`), so example i of a split is the i-th
non-empty example of its file and hypotheses can be written back in order.
"""
from __future__ import annotations

import abc
import dataclasses
import gzip
import hashlib
import itertools
import json
import logging
import os
import zlib
from typing import Any, Callable, Iterator, Sequence

import tensorflow_datasets as tfds

from research import console
from research.data import catalog
from research.data.config import slug
from research.data.errors import DataError
from research.data.lock import exclusive, lock_path

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
Pair = tuple[int, str, str]  # (1-based line number, source text, target text)
Advance = Callable[[int], None] | None  # told the bytes of the file read since its last call (a progress bar)


# ---------------------------------------------------------------- readers


def _lines(path: str, advance: Advance = None) -> Iterator[tuple[int, str]]:
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
    for lineno, text in _lines(path, advance):
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
            _check_unicode(obj[field], f"{path}:{lineno}: field {field!r}")
        yield lineno, obj[source], obj[target]


def _check_unicode(text: str, where: str) -> None:
    """Raises unless `text` can be written as UTF-8 (as tfds stores it).

    JSON may escape half a surrogate pair ("\\ud800"), which `json` decodes to
    a str that no UTF-8 writer accepts; failing here names the line.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise DataError(f"{where}: an unpaired surrogate {text[e.start]!r} at character {e.start} "
                        "is not Unicode text (a \\ud800-\\udfff escape without its partner)") from None


def _column_index(column: str) -> int | None:
    """The index a digits-only column names, else None (ASCII digits: int() rejects "²", which isdigit() accepts)."""
    column = str(column)
    return int(column) if column.isascii() and column.isdigit() else None


def read_tsv(path: str, source: str, target: str, advance: Advance = None) -> Iterator[Pair]:
    """Tab-separated columns, chosen by index ("0", "1": no header) or by header name.

    Cells are split on tabs only, without quoting rules: parallel text is full
    of quote characters that csv's dialects would misread.
    """
    lines = _lines(path, advance)
    indices = [_column_index(source), _column_index(target)]
    if None in indices:
        header = next(lines, None)
        if header is None:
            raise DataError(f"{path}:1: no header line to find columns {source!r}, {target!r} in")
        names = header[1].split("\t")
        for i, column in enumerate((source, target)):
            if indices[i] is None:
                if column not in names:
                    raise DataError(f"{path}:1: missing column {column!r} (the header has {names})")
                indices[i] = names.index(column)
    need = max(indices) + 1
    for lineno, text in lines:
        if not text:
            continue
        cells = text.split("\t")
        if len(cells) < need:
            raise DataError(f"{path}:{lineno}: missing column: the line has {len(cells)} columns, need {need}")
        yield lineno, cells[indices[0]], cells[indices[1]]


def read_moses(source_path: str, target_path: str, advance: Advance = None) -> Iterator[Pair]:
    """Two line-aligned files: line i of one translates line i of the other."""
    for s, t in itertools.zip_longest(_lines(source_path, advance), _lines(target_path, advance)):
        if s is None or t is None:
            n = _count_lines(source_path), _count_lines(target_path)
            raise DataError(
                f"{source_path} has {n[0]} lines but {target_path} has {n[1]}: line-aligned files must match "
                f"(line {min(n) + 1} of {source_path if t is None else target_path} has no partner)")
        yield s[0], s[1], t[1]


def _count_lines(path: str) -> int:
    return sum(1 for _ in _lines(path))


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


# ---------------------------------------------------------------- builders


@dataclasses.dataclass(eq=False)
class CorpusConfig(tfds.core.BuilderConfig):
    """Where a local corpus lives; kept in the config so the builder pickles (grain workers).

    Attributes:
      path: the directory with the split files.
      source, target: JSONL field names, TSV column names or indices, or Moses file suffixes.
      splits: the split names to prepare.
    """

    path: str = ""
    source: str = ""
    target: str = ""
    splits: tuple[str, ...] = SPLITS


def _find(directory: str, stem: str) -> str:
    """The path of `stem` or `stem.gz` in `directory`."""
    for name in (stem, stem + ".gz"):
        if os.path.isfile(os.path.join(directory, name)):
            return os.path.join(directory, name)
    raise DataError(f"{directory}: no file {stem} or {stem}.gz for this split")


class _LocalCorpus(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A corpus of (source, target) strings; subclasses say how to find and read a split."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Source and target text of a local corpus, in file order."}

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> None:
        """No code-relative resources (checksums); tfds's lookup needs importlib_resources."""
        return None

    @staticmethod
    @abc.abstractmethod
    def files(path: str, source: str, target: str, split: str) -> list[str]:
        """The input files of one split (what the fingerprint covers)."""

    @abc.abstractmethod
    def _read(self, files: list[str], advance: Advance) -> Iterator[Pair]:
        """The pairs in `files`, with line numbers; `advance` is told the bytes read."""

    def _info(self) -> tfds.core.DatasetInfo:
        text = tfds.features.Text()
        return tfds.core.DatasetInfo(
            builder=self,
            description=f"Local corpus at {self.builder_config.path}",
            features=tfds.features.FeaturesDict({"source": text, "target": text}),
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager: Any) -> dict[str, Iterator]:
        del dl_manager  # everything is local
        c = self.builder_config
        files = {split: self.files(c.path, c.source, c.target, split) for split in c.splits}  # fail before writing
        return {split: self._generate_examples(split, paths) for split, paths in files.items()}

    def _generate_examples(self, split: str, files: list[str]) -> Iterator[tuple[int, dict[str, str]]]:
        size = sum(os.path.getsize(f) for f in files)
        with console.progress(size, f"preparing {split}", "B", scale=True) as bar:
            for lineno, s, t in skip_empty(self._read(files, bar.update), " + ".join(files)):
                yield lineno, {"source": s, "target": t}

    # tfds prints these two with `print`; for local files its sizes are all "Unknown size".
    def _log_download_bytes(self) -> None:
        """Instead of "Downloading and preparing dataset Unknown size (download: Unknown size, ...)"."""
        log.info("preparing %s into %s", self.builder_config.path, self.data_dir)

    def _log_download_done(self) -> None:
        """Instead of "Dataset ... downloaded and prepared to ... Subsequent calls will reuse this data."."""
        counts = ", ".join(f"{split} {info.num_examples:,}" for split, info in self.info.splits.items())
        log.info("prepared %s (%s examples); later runs read it from %s", self.builder_config.path, counts, self.data_dir)


class JsonlCorpus(_LocalCorpus, skip_registration=True):
    """`{split}.jsonl[.gz]`, one JSON object per line."""

    @staticmethod
    def files(path: str, source: str, target: str, split: str) -> list[str]:
        return [_find(path, f"{split}.jsonl")]

    def _read(self, files: list[str], advance: Advance) -> Iterator[Pair]:
        return read_jsonl(files[0], self.builder_config.source, self.builder_config.target, advance)


class TsvCorpus(_LocalCorpus, skip_registration=True):
    """`{split}.tsv[.gz]`, tab-separated columns."""

    @staticmethod
    def files(path: str, source: str, target: str, split: str) -> list[str]:
        return [_find(path, f"{split}.tsv")]

    def _read(self, files: list[str], advance: Advance) -> Iterator[Pair]:
        return read_tsv(files[0], self.builder_config.source, self.builder_config.target, advance)


class MosesCorpus(_LocalCorpus, skip_registration=True):
    """`{split}.{source}[.gz]` and `{split}.{target}[.gz]`, line-aligned plain text."""

    @staticmethod
    def files(path: str, source: str, target: str, split: str) -> list[str]:
        return [_find(path, f"{split}.{source}"), _find(path, f"{split}.{target}")]

    def _read(self, files: list[str], advance: Advance) -> Iterator[Pair]:
        return read_moses(files[0], files[1], advance)


BUILDERS: dict[str, type[_LocalCorpus]] = {"jsonl": JsonlCorpus, "tsv": TsvCorpus, "moses": MosesCorpus}


def fingerprint(files: Sequence[str], settings: Sequence[Any]) -> str:
    """A short hash of the files' paths, sizes and mtimes and the settings."""
    stats = [(os.path.abspath(f), os.stat(f).st_size, os.stat(f).st_mtime_ns) for f in files]
    return hashlib.sha256(json.dumps([stats, list(settings)]).encode()).hexdigest()[:12]


def prepare(fmt: str, path: str, source: str, target: str, splits: Sequence[str],
            tfds_dir: str, name: str | None = None, builder: type[_LocalCorpus] | None = None) -> tfds.core.DatasetBuilder:
    """Prepares a local corpus into `tfds_dir` unless that exact corpus already is there.

    Args:
      fmt: "jsonl", "tsv" or "moses".
      path: the directory holding the split files.
      source, target: field names, column names or indices, or file suffixes.
      splits: split names; each must have its file(s) in `path`.
      tfds_dir: where prepared datasets live.
      name: a readable name for the prepared directory (default: the basename of `path`).
      builder: a builder of another record layout for files of this format (research/data/labels.py: labelled
        texts); None: the format's own. Its class name is part of the prepared path, so layouts never mix.
    """
    if fmt not in BUILDERS:
        raise DataError(f"unknown data format {fmt!r}: use one of {sorted(BUILDERS)} or 'tfds'")
    if not os.path.isdir(path):
        raise DataError(f"{path}: corpus directory not found")
    cls = builder or BUILDERS[fmt]
    source, target, splits = str(source), str(target), tuple(splits)
    files = [f for split in splits for f in cls.files(path, source, target, split)]
    digest = fingerprint(files, [fmt, source, target, splits, str(cls.VERSION)])
    readable = slug(name or os.path.basename(os.path.abspath(path))) or "corpus"
    config = CorpusConfig(name=f"{readable}-{digest}", path=os.path.abspath(path),
                          source=source, target=target, splits=splits)
    data_dir = os.path.expanduser(tfds_dir)
    # Built inside the lock: a builder made before another job finished would miss its metadata.
    with exclusive(lock_path(data_dir, f"{cls.name}-{config.name}")):
        builder = cls(config=config, data_dir=data_dir, file_format="array_record")
        if not builder.is_prepared():  # the builder logs what it prepares (_log_download_bytes)
            builder.download_and_prepare(download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    return builder


# ---------------------------------------------------------------- reading


class TextPairs:
    """Random access to a split as {"source": str, "target": str}, whatever the stored field names.

    Wraps a tfds data source (records of bytes); `len`, `[i]` and grain's
    batched `__getitems__` work, and it pickles for grain worker processes.
    """

    def __init__(self, records: Any, source_field: str, target_field: str):
        self._records, self._fields = records, (source_field, target_field)

    def __len__(self) -> int:
        return len(self._records)

    def _pair(self, record: dict[str, Any]) -> dict[str, str]:
        s, t = (record[f] for f in self._fields)
        return {"source": s.decode("utf-8") if isinstance(s, bytes) else s,
                "target": t.decode("utf-8") if isinstance(t, bytes) else t}

    def __getitem__(self, index: int) -> dict[str, str]:
        return self._pair(self._records[int(index)])

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, str]]:
        many = getattr(self._records, "__getitems__", None)
        records = many([int(i) for i in indices]) if many else [self._records[int(i)] for i in indices]
        return [self._pair(r) for r in records]


def load_splits(fmt: str, path: str, source: str | None, target: str | None,
                splits: Sequence[str] = SPLITS, tfds_dir: str = "~/tensorflow_datasets",
                name: str | None = None) -> dict[str, TextPairs]:
    """Prepares (once) and opens the splits of a local corpus or a tfds catalog dataset.

    Args:
      fmt: "jsonl", "tsv", "moses" for a local corpus, or "tfds" for a catalog dataset.
      path: the corpus directory, or the catalog name (e.g. "wmt14_translate/de-en").
      source, target: which fields hold the two sides (None: the catalog's default).
      splits: the splits to open.
      tfds_dir: where prepared datasets live (the config's `data.tfds_dir`).
      name: a readable name for a local corpus's prepared directory.

    Returns:
      split name -> random-access source of {"source": str, "target": str}.

    Raises:
      DataError: the corpus is missing or malformed; the message names the file and line.
    """
    if fmt == "tfds":
        source, target = catalog.fields(path, source, target)
        records = catalog.load(path, splits, tfds_dir)
    else:
        if source is None or target is None:
            raise DataError(f"{path}: a {fmt} corpus needs `source` and `target` (field names, columns or suffixes)")
        records = prepare(fmt, path, source, target, splits, tfds_dir, name).as_data_source()
        source, target = "source", "target"
    return {split: TextPairs(records[split], source, target) for split in splits}
