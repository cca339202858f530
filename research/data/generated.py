"""tfds builder for the diagnostic datasets that are generated, not downloaded (`data.format=generated`).

The generators (`research/data/diagnostics/`) are deterministic from their
options, so a dataset is prepared once into `tfds_dir` like a local corpus and
read back from there, with the same random access, batching and run folders.
The prepared directory is keyed by the options *and the generator's source
code*: editing a generator prepares its data again instead of reusing what an
older version wrote.

`data.generator` holds the options: `name` (copy, reverse, sort, addition,
scan) and the rest of the generator's fields, e.g.
`{name: reverse, max_len: 8, train_size: 10000}` or `{name: scan, split: length}`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import logging
import os
from typing import Any, Iterator, Mapping, Sequence

import tensorflow_datasets as tfds

from research.data import builders
from research.data.config import slug
from research.data.diagnostics import algorithmic, scan
from research.data.errors import DataError
from research.data.lock import exclusive, lock_path

log = logging.getLogger(__name__)

GENERATORS = (*algorithmic.TASKS, "scan")
SCAN_OPTIONS = ("split", "seed", "validation_fraction")


def _options(options: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(generator name, its other options), every key checked against the generator's own fields."""
    options = dict(options or {})
    name = options.pop("name", None)
    if name not in GENERATORS:
        raise DataError(f"data.generator.name={name!r}: not one of {', '.join(GENERATORS)}")
    known = SCAN_OPTIONS if name == "scan" else tuple(f.name for f in dataclasses.fields(algorithmic.AlgorithmicConfig)
                                                      if f.name != "task")
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise DataError(f"data.generator.{unknown[0]}: not an option of the {name} generator (it has {', '.join(known)})")
    return name, options


def generate(options: Mapping[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """split -> (source, target) pairs of whitespace-separated symbols, as the generator makes them."""
    name, rest = _options(options)
    if name == "scan":
        if "split" not in rest:
            raise DataError(f"data.generator.split: missing (one of {', '.join(scan.SPLITS)})")
        return scan.split(rest.pop("split"), **rest)
    return algorithmic.generate(algorithmic.AlgorithmicConfig(task=name, **rest))


def _module(name: str):
    return scan if name == "scan" else algorithmic


def fingerprint(options: Mapping[str, Any]) -> str:
    """A short hash of the options and of the generator's source: new code, new data."""
    name, rest = _options(options)
    code = inspect.getsource(_module(name))
    return hashlib.sha256(json.dumps([name, rest, code], sort_keys=True).encode()).hexdigest()[:12]


@dataclasses.dataclass(eq=False)
class GeneratedConfig(tfds.core.BuilderConfig):
    """The generator options as JSON (a BuilderConfig must pickle and compare plainly)."""

    options: str = "{}"


class GeneratedCorpus(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """(source, target) symbol strings from a generator, in the generator's order."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Source and target symbol strings of a generated diagnostic dataset."}

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> None:
        """No code-relative resources (checksums); tfds's lookup needs importlib_resources."""
        return None

    def _info(self) -> tfds.core.DatasetInfo:
        text = tfds.features.Text()
        return tfds.core.DatasetInfo(
            builder=self, description=f"Generated dataset {self.builder_config.options}",
            features=tfds.features.FeaturesDict({"source": text, "target": text}), disable_shuffling=True)

    def _split_generators(self, dl_manager: Any) -> dict[str, Iterator]:
        del dl_manager  # nothing to download
        splits = generate(json.loads(self.builder_config.options))
        return {name: self._generate_examples(pairs) for name, pairs in splits.items()}

    def _generate_examples(self, pairs: list[tuple[str, str]]) -> Iterator[tuple[int, dict[str, str]]]:
        for i, (s, t) in enumerate(pairs):
            yield i, {"source": s, "target": t}

    def _log_download_bytes(self) -> None:
        log.info("generating %s into %s", self.builder_config.options, self.data_dir)

    def _log_download_done(self) -> None:
        counts = ", ".join(f"{split} {info.num_examples:,}" for split, info in self.info.splits.items())
        log.info("generated %s (%s examples); later runs read it from %s", self.builder_config.name, counts, self.data_dir)


def prepare(options: Mapping[str, Any], tfds_dir: str, name: str) -> tfds.core.DatasetBuilder:
    """Generates the dataset into `tfds_dir` unless that exact one (options and code) is there already."""
    digest = fingerprint(options)
    config = GeneratedConfig(name=f"{slug(name) or 'generated'}-{digest}",
                             options=json.dumps(dict(options), sort_keys=True))
    data_dir = os.path.expanduser(tfds_dir)
    with exclusive(lock_path(data_dir, f"{GeneratedCorpus.name}-{config.name}")):
        builder = GeneratedCorpus(config=config, data_dir=data_dir, file_format="array_record")
        if not builder.is_prepared():
            builder.download_and_prepare(download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    return builder


def load_splits(options: Mapping[str, Any], splits: Sequence[str], tfds_dir: str,
                name: str) -> dict[str, builders.TextPairs]:
    """Prepares (once) and opens `splits` of a generated dataset; a split it does not make is an error."""
    builder = prepare(options, tfds_dir, name)
    missing = [s for s in splits if s not in builder.info.splits]
    if missing:
        raise DataError(f"data.generator.name={dict(options).get('name')!r} makes the splits "
                        f"{sorted(builder.info.splits)}, not {missing[0]!r} (set data.train_split, "
                        f"valid_split and test_split to its names)")
    records = builder.as_data_source()
    return {split: builders.TextPairs(records[split], "source", "target") for split in splits}
