"""Tagged sentences for `data.task=tagging|span_tagging`: how one travels as an example, and the readers.

A sentence is a list of words with one tag per word. Through the seq2seq
pipeline it travels as an example like any other:

  source  the JSON list of its words, or, for one predicate of a semantic
          role labelling sentence (research/data/conll.py), the JSON object
          {"words": [...], "predicate": i}: the predicate is part of the
          input, so two instances of one sentence are two sources.
  target  its tags joined by single spaces (a tag holds no whitespace), so
          hyps_<split>.txt reads as one line of tags per sentence.
  line    the file line the sentence starts on (a record number for a tfds
          catalog dataset), for error messages found after preparation.

Readers here (JSONL with word and tag lists) and in research/data/conll.py
(CoNLL-2003 columns, CoNLL-U, SRL props) prepare a local corpus once into
`data.tfds_dir` as array_record, like every local corpus
(research/data/builders.py); catalog data (conll2003) is read through
research/data/catalog.py and its ClassLabel ids mapped to names.

Refused, by a DataError naming the file and line: an empty sentence, a word
that is empty or all space, a tag that is empty or holds whitespace, a
sentence whose tag count differs from its word count. Nothing is skipped.
The tag vocabulary and the tokenizer are research/data/tags.py.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import tensorflow_datasets as tfds

from research import console
from research.data import builders, catalog, readers
from research.data.errors import DataError
from research.data.records import RecordView

Sentence = tuple[int, str, str]  # (line, source, target) as the examples hold them


def source_text(words: Sequence[str], predicate: int | None = None) -> str:
    """An example's `source` (see the module docstring)."""
    if predicate is None:
        return json.dumps(list(words), ensure_ascii=False)
    return json.dumps({"words": list(words), "predicate": int(predicate)}, ensure_ascii=False)


def parse_source(source: str) -> tuple[list[str], int | None]:
    """`source_text` read back: (words, the predicate's word index or None)."""
    value = json.loads(source)
    return (value["words"], value["predicate"]) if isinstance(value, dict) else (value, None)


def tags_of(target: str) -> list[str]:
    """The tags of one example's `target`."""
    return target.split(" ")


def readable(source: str) -> str:
    """A source as a person reads it (validation samples): the words, the predicate in [brackets]."""
    words, predicate = parse_source(source)
    return " ".join(f"[{w}]" if i == predicate else w for i, w in enumerate(words))


def check_sentence(words: Sequence[Any], tags: Sequence[Any], where: str) -> str:
    """Raises a DataError for what the module docstring refuses; -> the example's `target`."""
    if not words:
        raise DataError(f"{where}: empty sentence (no word); remove it or give it words")
    if len(tags) != len(words):
        raise DataError(f"{where}: {len(words)} words but {len(tags)} tags; every word needs exactly one tag")
    for i, word in enumerate(words):
        if not isinstance(word, str) or not word.strip():
            raise DataError(f"{where}: word {i + 1} is {json.dumps(word)[:40]}, not a non-empty string")
        readers.check_unicode(word, f"{where}: word {i + 1}")
    for i, tag in enumerate(tags):
        if not isinstance(tag, str) or not tag or tag != "".join(tag.split()):
            raise DataError(f"{where}: tag {i + 1} is {json.dumps(tag)[:40]}: a tag must be a non-empty string "
                            "without spaces")
        readers.check_unicode(tag, f"{where}: tag {i + 1}")
    return " ".join(tags)


def read_tagged_jsonl(path: str, tokens_field: str, tags_field: str, advance: readers.Advance = None
                      ) -> Iterator[Sentence]:
    """(line, source, target) of every sentence of a JSONL file with a word list and a tag list field."""
    for lineno, obj in readers.json_objects(path, (tokens_field, tags_field), advance):
        where = f"{path}:{lineno}"
        for field in (tokens_field, tags_field):
            if not isinstance(obj[field], list):
                raise DataError(f"{where}: field {field!r} is {type(obj[field]).__name__}, not a list")
        target = check_sentence(obj[tokens_field], obj[tags_field], where)
        yield lineno, source_text(obj[tokens_field]), target


class TaggedBuilder(builders.LocalCorpus, skip_registration=True):
    """A prepared corpus of tagged sentences: records {source, target, line} in file order; subclasses say
    which files a split reads and how (`files`, `_read`)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Words (JSON), tags and first line of each tagged sentence, in file order."}

    def _info(self) -> tfds.core.DatasetInfo:
        text = tfds.features.Text()
        return tfds.core.DatasetInfo(
            builder=self, description=f"Tagged sentences at {self.builder_config.path}",
            features=tfds.features.FeaturesDict({"source": text, "target": text, "line": tfds.features.Scalar(np.int64)}),
            disable_shuffling=True,
        )

    def _generate_examples(self, split: str, files: list[str]) -> Iterator[tuple[int, dict]]:
        """Every sentence, keyed by its place in the file: tfds sorts unshuffled records by key, and one
        sentence of SRL props gives an instance per predicate, all on its line. Nothing is skipped."""
        size = sum(Path(f).stat().st_size for f in files)
        with console.progress(size, f"preparing {split}", "B", scale=True) as bar:
            for i, (lineno, source, target) in enumerate(self._read(files, bar.update)):
                yield i, {"source": source, "target": target, "line": lineno}


class TaggedJsonl(TaggedBuilder, skip_registration=True):
    """`{split}.jsonl[.gz]`: one sentence a line, `data.source` its word list, `data.target` its tag list."""

    files = staticmethod(builders.JsonlCorpus.files)

    def _read(self, files: list[str], advance: readers.Advance) -> Iterator[Sentence]:
        return read_tagged_jsonl(files[0], self.builder_config.source, self.builder_config.target, advance)


class TaggedSentences(RecordView):
    """Random access to a split as {"source", "target", "line"} (records.RecordView); `where` names the
    file, `unit` what `line` counts."""

    unit = "line"

    def __init__(self, records: Any, where: str):
        super().__init__(records)
        self.where = where

    def _example(self, r: dict, index: int) -> dict:
        text = lambda v: v.decode("utf-8") if isinstance(v, bytes) else v
        return {"source": text(r["source"]), "target": text(r["target"]), "line": int(r["line"])}


def load_prepared(fmt: str, builder: type[TaggedBuilder], directory: str, source: str, target: str,
                  splits: Sequence[str], tfds_dir: str, name: str | None) -> dict[str, TaggedSentences]:
    """Prepares (once) and opens the splits of a local tagged corpus; split -> TaggedSentences."""
    built = builders.prepare(fmt, directory, source, target, splits, tfds_dir, name, builder=builder)
    records = built.as_data_source()
    return {split: TaggedSentences(records[split], builder.files(directory, source, target, split)[0])
            for split in splits}


class CatalogSentences(RecordView):
    """A tfds catalog split of word and ClassLabel-tag sequences (conll2003: `tokens`, `ner`) as examples:
    tag ids become the dataset's own names (its DatasetInfo), `line` is the record number from 1."""

    unit = "record"

    def __init__(self, records: Any, words: str, tags: str, where: str):
        feature = records.dataset_info.features[tags]
        names = getattr(feature, "feature", feature).names  # a Sequence(ClassLabel) holds the ClassLabel
        super().__init__(records)
        self._fields, self._names, self.where = (words, tags), list(names), where

    def _example(self, r: dict, index: int) -> dict:
        words = [w.decode("utf-8") if isinstance(w, bytes) else str(w) for w in r[self._fields[0]]]
        tags = [self._names[int(k)] for k in r[self._fields[1]]]
        target = check_sentence(words, tags, f"{self.where}: record {index + 1}")
        return {"source": source_text(words), "target": target, "line": index + 1}


def load_catalog(name: str, words: str, tags: str, splits: Sequence[str], tfds_dir: str) -> dict[str, CatalogSentences]:
    """A catalog dataset's splits (prepared, or one DataError saying what to do: research/data/catalog.py)."""
    records = catalog.load(name, splits, tfds_dir)
    features = records[splits[0]].dataset_info.features
    for field in (words, tags):
        if field not in features:
            raise DataError(f"tfds dataset {name!r} has no feature {field!r} (it has {sorted(features)})")
    return {split: CatalogSentences(records[split], words, tags, f"tfds {name} {split}") for split in splits}
