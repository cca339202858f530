"""tfds catalog datasets (WMT, TED, CNN/DailyMail, XSum, Gigaword) behind `load_splits`.

Without TensorFlow tfds does not even register its catalog, and offline it
cannot download: with TensorFlow installed but no network a build retries for
minutes before a ConnectionError. So before anything slow this module checks
(1) prepared array_record data already in `tfds_dir` (read without TF),
(2) the dataset is registered, (3) a download server answers within seconds,
and otherwise stops at once with one DataError saying what to do.
"""
from __future__ import annotations

import dataclasses
import glob
import logging
import os
import socket
from typing import Any, Sequence

import tensorflow_datasets as tfds

from research.data.errors import DataError
from research.data.lock import exclusive, lock_path

log = logging.getLogger(__name__)

# Where tfds downloads from; a connect within this many seconds means "online".
PROBE_HOST, PROBE_TIMEOUT_S = ("storage.googleapis.com", 443), 3.0


@dataclasses.dataclass(frozen=True)
class CatalogEntry:
    """Which record fields hold the source and target text of a catalog dataset."""

    source: str
    target: str


CATALOG: dict[str, CatalogEntry] = {
    "wmt14_translate/de-en": CatalogEntry("de", "en"),
    "wmt_t2t_translate/de-en": CatalogEntry("de", "en"),
    "ted_hrlr_translate/pt_to_en": CatalogEntry("pt", "en"),
    "cnn_dailymail": CatalogEntry("article", "highlights"),
    "xsum": CatalogEntry("document", "summary"),
    "gigaword": CatalogEntry("document", "summary"),
}


def fields(name: str, source: str | None, target: str | None) -> tuple[str, str]:
    """The source and target field names: as given, else the catalog's."""
    if source is not None and target is not None:
        return source, target
    if name not in CATALOG:
        raise DataError(f"tfds dataset {name!r} is not in the catalog {sorted(CATALOG)}: give `source` and `target` fields")
    entry = CATALOG[name]
    return source or entry.source, target or entry.target


def find_prepared(name: str, tfds_dir: str) -> str | None:
    """The newest prepared version directory of `name` ("dataset[/config]") in `tfds_dir`, if any."""
    dataset, _, config = name.partition("/")
    root = os.path.join(os.path.expanduser(tfds_dir), dataset)
    patterns = [os.path.join(root, config, "[0-9]*", "dataset_info.json")] if config else [
        os.path.join(root, "[0-9]*", "dataset_info.json"),          # no configs
        os.path.join(root, "*", "[0-9]*", "dataset_info.json")]     # the default config
    found = [os.path.dirname(p) for pattern in patterns for p in glob.glob(pattern)]
    if not found:
        return None
    return max(found, key=lambda d: tfds.core.Version(os.path.basename(d)))


def _why_not_buildable(name: str) -> str | None:
    """Why tfds cannot build `name` here, found without waiting on the network; None if it can."""
    try:
        tfds.builder_cls(name.partition("/")[0])
    except tfds.core.DatasetNotFoundError:
        return ("tfds has not registered it: tfds registers its catalog datasets only when TensorFlow "
                "is installed, and this environment has no TensorFlow")
    try:
        socket.create_connection(PROBE_HOST, timeout=PROBE_TIMEOUT_S).close()
    except OSError:
        return f"there is no network to download it ({PROBE_HOST[0]} did not answer in {PROBE_TIMEOUT_S:.0f} s)"
    return None


def _instructions(name: str, tfds_dir: str, reason: str) -> str:
    dataset = name.partition("/")[0]
    return (
        f"tfds dataset {name!r} is not prepared in data.tfds_dir={tfds_dir!r} and cannot be built here: {reason}. "
        f"To fix it, on a machine with network run "
        f"`pip install 'tensorflow-datasets[tensorflow]' importlib_resources` and "
        f"`tfds build {name} --data_dir=DIR --file_format=array_record`, then copy DIR/{dataset} to "
        f"{os.path.join(tfds_dir, dataset)} (or set data.tfds_dir to DIR). "
        f"Reading prepared array_record data needs no TensorFlow.")


def _open(builder: tfds.core.DatasetBuilder, name: str, splits: Sequence[str]) -> dict[str, Any]:
    """The data sources of `splits`, after checking the format and that each split exists."""
    file_format = str(builder.info.file_format.value if builder.info.file_format else "")
    if file_format != "array_record":
        raise DataError(
            f"{builder.data_dir}: {name!r} is stored as {file_format or 'an unknown format'}, which needs "
            f"TensorFlow to read: rebuild it with `tfds build {name} --data_dir=DIR --file_format=array_record`")
    missing = sorted({s.partition("[")[0] for s in splits} - set(builder.info.splits))
    if missing:
        raise DataError(f"{builder.data_dir}: {name!r} has no split {missing} (it has {sorted(builder.info.splits)})")
    # A split may be a tfds slice, "train[:90%]" or "train[872:]": a validation split cut from a catalog
    # dataset that has none (imdb_reviews), or one apart from an unlabelled test split (glue/sst2).
    return {s: builder.as_data_source(split=s) for s in splits}


def load(name: str, splits: Sequence[str], tfds_dir: str) -> dict[str, Any]:
    """Opens a catalog dataset's splits: prepared data if present, else a build if possible.

    Returns:
      split name -> tfds random-access data source (records hold bytes).

    Raises:
      DataError: at once, with what to do, when the data is neither prepared nor buildable.
    """
    prepared = find_prepared(name, tfds_dir)
    if prepared is not None:
        log.info("reading prepared %s from %s", name, prepared)
        return _open(tfds.builder_from_directory(prepared), name, splits)
    reason = _why_not_buildable(name)
    if reason is not None:
        raise DataError(_instructions(name, tfds_dir, reason))
    data_dir = os.path.expanduser(tfds_dir)
    with exclusive(lock_path(data_dir, name)):  # another job may be building it right now
        builder = tfds.builder(name, data_dir=data_dir, file_format="array_record")
        builder.download_and_prepare()
    return _open(builder, name, splits)
