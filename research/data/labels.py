"""Labelled texts for classification: the JSONL reader, the label vocabulary and the run's tokenizer.

A corpus is `{split}.jsonl[.gz]` with a text field (`data.source`) and a label
field (`data.target`): a string for single-label classification, a list of
strings for multi-label (`tags`). It is prepared once into `data.tfds_dir` as
array_record like every local corpus (research/data/builders.py), by a builder
of its own that keeps each example's line number, so an error found later
(a label training never saw) can still point at the file's line.

What is refused, by a DataError naming the file and line: an empty (or
all-space) text, a label that is not a non-empty string (or, for a list, a
list of them), a label with a tab or line break (the predictions file holds
one example per line). Nothing is skipped, so a split keeps its size and
every evaluation scores all of it.

How labels travel through the seq2seq pipeline unchanged: an example's
`target` is its label (single-label) or the JSON list of its labels, sorted
and without repeats (multi-label, e.g. `["role::program", "use::viewing"]`;
`[]` for none). The label vocabulary is the target side of the run's
tokenizer: label k becomes id k + OFFSET, past the four special ids, so the
batch's `target_out` row is `[label id, EOS]` (or all label ids, then EOS)
and no label is mistaken for padding or EOS. The vocabulary is every label
of the training split in sorted order; it is saved beside the text model in
the run's `tokenizer/` (labels.json), so evaluating a run needs nothing else.
A validation or test label that the vocabulary lacks is an error naming the
label(s), how often each occurs, the split and the first line (`check`):
the classifier has no output for it, and mapping it to another label would
score the split wrongly in silence.
"""
from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import tensorflow_datasets as tfds

from research import console
from research.data import builders, catalog, closed_vocab, readers
from research.data.batch import EOS
from research.data.errors import DataError
from research.data.records import RecordView

OFFSET = 4  # label k is id k + OFFSET: PAD, UNK, BOS and EOS keep 0..3
FILE = "labels.json"  # in a run's tokenizer/ folder, beside the text model


# ---------------------------------------------------------------- reading


def _label(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: a label must be a non-empty string, got {json.dumps(value)[:60]}")
    if any(c in value for c in "\t\n\r"):
        raise DataError(f"{where}: label {value!r} holds a tab or line break (predictions are one example a line)")
    readers.check_unicode(value, where)
    return value


def read_labelled(path: str, text_field: str, label_field: str, advance: readers.Advance = None
                  ) -> Iterator[tuple[int, str, str]]:
    """(line, text, the label field as JSON) of every example of a JSONL file; see the module docstring."""
    for lineno, obj in readers.json_objects(path, (text_field, label_field), advance):
        where = f"{path}:{lineno}"
        text, value = obj[text_field], obj[label_field]
        if not isinstance(text, str):
            raise DataError(f"{where}: field {text_field!r} is {type(text).__name__}, not a string")
        if not text.strip():
            raise DataError(f"{where}: empty text in field {text_field!r}; remove the line or give it a text")
        readers.check_unicode(text, f"{where}: field {text_field!r}")
        label_where = f"{where}: field {label_field!r}"
        value = [_label(v, label_where) for v in value] if isinstance(value, list) else _label(value, label_where)
        yield lineno, text, json.dumps(value, ensure_ascii=False)


class LabelledCorpus(builders.LocalCorpus, skip_registration=True):
    """`{split}.jsonl[.gz]` of labelled texts: records {source: text, target: label field as JSON, line}."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Text, label field (JSON) and line number of a local labelled corpus, in file order."}
    files = staticmethod(builders.JsonlCorpus.files)

    def _info(self) -> tfds.core.DatasetInfo:
        text = tfds.features.Text()
        return tfds.core.DatasetInfo(
            builder=self, description=f"Labelled local corpus at {self.builder_config.path}",
            features=tfds.features.FeaturesDict({"source": text, "target": text, "line": tfds.features.Scalar(np.int64)}),
            disable_shuffling=True,
        )

    def _read(self, files: list[str], advance: readers.Advance) -> Iterator[tuple[int, str, str]]:
        return read_labelled(files[0], self.builder_config.source, self.builder_config.target, advance)

    def _generate_examples(self, split: str, files: list[str]) -> Iterator[tuple[int, dict]]:
        """Every example, keyed by its line number; nothing is skipped (the reader refuses what is bad)."""
        size = sum(Path(f).stat().st_size for f in files)
        with console.progress(size, f"preparing {split}", "B", scale=True) as bar:
            for lineno, text, target in self._read(files, bar.update):
                yield lineno, {"source": text, "target": target, "line": lineno}


def canonical(value: Any, multi: bool, where: str) -> str:
    """A label field's value as an example's `target`: the label, or the sorted JSON list of distinct labels."""
    if multi:
        if not isinstance(value, list):
            raise DataError(f"{where}: the label field holds one label ({value!r}), not a list; task=multilabel reads "
                            "a list field (e.g. data.target=tags); single labels are task=classification")
        return json.dumps(sorted(set(value)), ensure_ascii=False)
    if isinstance(value, list):
        raise DataError(f"{where}: the label field holds a list ({json.dumps(value)[:60]}); task=classification reads "
                        "one label per example; a list of labels is task=multilabel")
    return value


class LabelledTexts(RecordView):
    """Random access to a split as {"source": text, "target": canonical label(s), "line": int}
    (records.RecordView); the single- or multi-label reading of the target is checked per example."""

    def __init__(self, records: Any, where: str, multi: bool):
        super().__init__(records)
        self.where, self.multi = where, multi

    def _example(self, r: dict, index: int) -> dict:
        text = r["source"].decode("utf-8") if isinstance(r["source"], bytes) else r["source"]
        value = json.loads(r["target"])
        line = int(r["line"])
        return {"source": text, "target": canonical(value, self.multi, f"{self.where}:{line}"), "line": line}


def load_splits(directory: str, text_field: str, label_field: str, splits: Sequence[str], tfds_dir: str,
                name: str | None, multi: bool) -> dict[str, LabelledTexts]:
    """Prepares (once) and opens the splits of a labelled JSONL corpus; split -> LabelledTexts."""
    built = builders.prepare("jsonl", directory, text_field, label_field, splits, tfds_dir, name, builder=LabelledCorpus)
    records = built.as_data_source()
    return {split: LabelledTexts(records[split], LabelledCorpus.files(directory, "", "", split)[0], multi)
            for split in splits}


class CatalogTexts(RecordView):
    """A tfds catalog split of a text field and a ClassLabel field (imdb_reviews: `text`, `label`; glue/sst2:
    `sentence`, `label`) as examples: label ids become the dataset's own names (its DatasetInfo), `line` is the
    record number from 1. A record without a label (id -1: GLUE's test splits) is an error naming it, never
    read as the last name (Python's [-1])."""

    def __init__(self, records: Any, text: str, label: str, where: str, multi: bool):
        if multi:
            raise DataError(f"{where}: task=multilabel reads a list field of a local JSONL corpus; a catalog "
                            "ClassLabel holds one label per record (task=classification)")
        feature = records.dataset_info.features[label]
        if not hasattr(feature, "names"):
            raise DataError(f"{where}: feature {label!r} is a {type(feature).__name__}, not a ClassLabel")
        super().__init__(records)
        self._fields, self._names, self.where = (text, label), list(feature.names), where

    def _example(self, r: dict, index: int) -> dict:
        where = f"{self.where}: record {index + 1}"
        text = r[self._fields[0]]
        text = text.decode("utf-8") if isinstance(text, bytes) else str(text)
        if not text.strip():
            raise DataError(f"{where}: empty text")
        k = int(r[self._fields[1]])
        if not 0 <= k < len(self._names):
            raise DataError(f"{where}: label id {k} is none of the {len(self._names)} names {self._names} (GLUE's "
                            "test splits are unlabelled: score a labelled split, e.g. data.test_split=validation)")
        return {"source": text, "target": self._names[k], "line": index + 1}


def load_catalog(name: str, text: str, label: str, splits: Sequence[str], tfds_dir: str,
                 multi: bool) -> dict[str, CatalogTexts]:
    """A catalog dataset's splits (prepared, or one DataError saying what to do: research/data/catalog.py)."""
    records = catalog.load(name, splits, tfds_dir)
    features = records[splits[0]].dataset_info.features
    for field in (text, label):
        if field not in features:
            raise DataError(f"tfds dataset {name!r} has no feature {field!r} (it has {sorted(features)})")
    return {split: CatalogTexts(records[split], text, label, f"tfds {name} {split}", multi) for split in splits}


# ---------------------------------------------------------------- the label vocabulary


def targets_of(target: str, multi: bool) -> list[str]:
    """The labels of one example's canonical target."""
    return json.loads(target) if multi else [target]


class Labels:
    """The label vocabulary: names in sorted order, label k <-> id k + OFFSET."""

    def __init__(self, names: Sequence[str], multi: bool):
        self.names, self.multi = tuple(names), bool(multi)
        self.index = {n: k for k, n in enumerate(self.names)}

    @classmethod
    def from_targets(cls, targets: Sequence[str], multi: bool) -> Labels:
        names = sorted({label for t in targets for label in targets_of(t, multi)})
        if not names:
            raise DataError("the training split has no label at all: nothing to classify")
        return cls(names, multi)

    def __len__(self) -> int:
        return len(self.names)

    def encode(self, target: str) -> list[int]:
        """An example's target -> its label ids (+ OFFSET), ascending; what the batch's target_out holds."""
        try:
            return sorted(self.index[label] + OFFSET for label in targets_of(target, self.multi))
        except KeyError as e:  # `check` names them all first; this guards any other path
            raise DataError(f"label {e.args[0]!r} is not among the {len(self)} labels of the training split") from None

    def decode(self, ids) -> str:
        """Label ids (+ OFFSET, up to EOS) -> the canonical target (the label, or the JSON list)."""
        names = []
        for i in ids:
            if int(i) == EOS:
                break
            if int(i) >= OFFSET:
                names.append(self.names[int(i) - OFFSET])
        return json.dumps(sorted(names), ensure_ascii=False) if self.multi else (names[0] if names else "")

    def check(self, examples: Any, split: str) -> None:
        """Raises a DataError naming every label of `examples` outside the vocabulary, its count, the split
        and the first line it is on (see the module docstring)."""
        unseen: collections.Counter = collections.Counter()
        first: dict[str, int] = {}
        rows = examples.__getitems__(range(len(examples))) if hasattr(examples, "__getitems__") else list(examples)
        for row in rows:
            for label in targets_of(row["target"], self.multi):
                if label not in self.index:
                    unseen[label] += 1
                    first.setdefault(label, row.get("line", -1))
        if unseen:
            where = getattr(examples, "where", None) or getattr(getattr(examples, "_source", None), "where", "")
            listed = ", ".join(f"{label!r} ({n}x, first at line {first[label]})" for label, n in unseen.most_common(20))
            more = f" and {len(unseen) - 20} more" if len(unseen) > 20 else ""
            raise DataError(f"{split} split{f' ({where})' if where else ''}: {sum(unseen.values())} label(s) that "
                            f"the training split never had, so the classifier has no output for them: {listed}{more}. "
                            "Add examples of them to the training split (or train on more of it: data.max_train_examples) or "
                            "drop them from this split")

    def to_json(self) -> dict:
        return {"multi_label": self.multi, "labels": list(self.names)}

    def save(self, folder: Path) -> Path:
        return closed_vocab.save_json(folder, FILE, self.to_json())

    @classmethod
    def read(cls, folder: Path) -> Labels:
        saved = closed_vocab.read_json(folder, FILE, "no label vocabulary (a classification run saves it when it starts)")
        return cls(saved["labels"], saved["multi_label"])


class LabelledTokenizer(closed_vocab.ClosedVocabTokenizer):
    """A classification run's tokenizer: SentencePiece pieces for the text, the label vocabulary as the target side.

    It answers what research/data/pipeline.py and the run files ask of a
    `tokenizer.Tokenizer` (encode_source, encode_target, the vocabulary sizes,
    a fingerprint that covers the labels too), so batches, checkpoints and the
    manifest need nothing of their own.
    """

    VOCAB = Labels

    @property
    def labels(self) -> Labels:
        return self.vocab

    def unknown(self, texts, side: str = "source") -> int:
        return self.text.unknown(texts, "source")
