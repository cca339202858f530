"""tfds builders for corpora a user brings, and `load_splits`, the one entry point.

A local corpus is JSONL, TSV or Moses-style line-aligned text (read by `readers.py`). Each is prepared
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
import hashlib
import json
import logging
import os
from typing import Any, Iterator, Sequence

import tensorflow_datasets as tfds

from research import console
from research.data import catalog
from research.data.config import slug
from research.data.errors import DataError
from research.data.lock import exclusive, lock_path
from research.data.readers import Advance, Pair, read_jsonl, read_moses, read_tsv, skip_empty
from research.data.records import RecordView

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


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


def split_file(directory: str, stem: str) -> str:
    """The path of `stem` or `stem.gz` in `directory`."""
    for name in (stem, stem + ".gz"):
        if os.path.isfile(os.path.join(directory, name)):
            return os.path.join(directory, name)
    raise DataError(f"{directory}: no file {stem} or {stem}.gz for this split")


class LocalCorpus(tfds.core.GeneratorBasedBuilder, skip_registration=True):
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


class JsonlCorpus(LocalCorpus, skip_registration=True):
    """`{split}.jsonl[.gz]`, one JSON object per line."""

    @staticmethod
    def files(path: str, source: str, target: str, split: str) -> list[str]:
        return [split_file(path, f"{split}.jsonl")]

    def _read(self, files: list[str], advance: Advance) -> Iterator[Pair]:
        return read_jsonl(files[0], self.builder_config.source, self.builder_config.target, advance)


class TsvCorpus(LocalCorpus, skip_registration=True):
    """`{split}.tsv[.gz]`, tab-separated columns."""

    @staticmethod
    def files(path: str, source: str, target: str, split: str) -> list[str]:
        return [split_file(path, f"{split}.tsv")]

    def _read(self, files: list[str], advance: Advance) -> Iterator[Pair]:
        return read_tsv(files[0], self.builder_config.source, self.builder_config.target, advance)


class MosesCorpus(LocalCorpus, skip_registration=True):
    """`{split}.{source}[.gz]` and `{split}.{target}[.gz]`, line-aligned plain text."""

    @staticmethod
    def files(path: str, source: str, target: str, split: str) -> list[str]:
        return [split_file(path, f"{split}.{source}"), split_file(path, f"{split}.{target}")]

    def _read(self, files: list[str], advance: Advance) -> Iterator[Pair]:
        return read_moses(files[0], files[1], advance)


BUILDERS: dict[str, type[LocalCorpus]] = {"jsonl": JsonlCorpus, "tsv": TsvCorpus, "moses": MosesCorpus}


def fingerprint(files: Sequence[str], settings: Sequence[Any]) -> str:
    """A short hash of the files' paths, sizes and mtimes and the settings."""
    stats = [(os.path.abspath(f), os.stat(f).st_size, os.stat(f).st_mtime_ns) for f in files]
    return hashlib.sha256(json.dumps([stats, list(settings)]).encode()).hexdigest()[:12]


def prepare(fmt: str, path: str, source: str, target: str, splits: Sequence[str],
            tfds_dir: str, name: str | None = None, builder: type[LocalCorpus] | None = None) -> tfds.core.DatasetBuilder:
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


class TextPairs(RecordView):
    """Random access to a split as {"source": str, "target": str}, whatever the stored field names.

    Wraps a tfds data source (records of bytes) as a records.RecordView: `len`,
    `[i]` and grain's batched `__getitems__`, picklable for grain workers.
    """

    def __init__(self, records: Any, source_field: str, target_field: str):
        super().__init__(records)
        self._fields = (source_field, target_field)

    def _example(self, record: dict[str, Any], index: int) -> dict[str, str]:
        s, t = (record[f] for f in self._fields)
        return {"source": s.decode("utf-8") if isinstance(s, bytes) else s,
                "target": t.decode("utf-8") if isinstance(t, bytes) else t}


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
