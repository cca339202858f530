"""The `data` config group: which corpus, which fields, how batches are formed."""
from __future__ import annotations

import dataclasses
import os
import re
from typing import Any, Dict, Optional

from research.data.pipeline import PipelineConfig
from research.registry import check

FORMATS = ("jsonl", "tsv", "moses", "tfds", "generated")


def slug(text: str) -> str:
    """`text` as a folder and log name: lower-case ASCII letters, digits, underscores ("" if none are left)."""
    return re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_")


def corpus_name(directory: str) -> str:
    """The name a corpus folder gives a run that sets data.dir but not data.name: "~/corpora/fr-en/" -> "fr_en".

    Relative paths are taken from the working directory (`data.dir=.` names
    the current folder); a folder without a usable name (/) gives "corpus".
    """
    path = os.path.abspath(os.path.expanduser(str(directory)))
    return slug(os.path.basename(path)) or "corpus"


@dataclasses.dataclass(frozen=True)
class DataConfig:
    name: str = "custom"
    task: str = "translation"  # translation (BLEU, chrF) | summarization (ROUGE) | sequence (exact match)
    #                            | classification (accuracy, macro-F1) | multilabel (micro-/macro-F1)
    #                            | tagging (per-tag, macro-F1) | span_tagging (seqeval span F1); tsv: CoNLL columns
    #                            | lm (perplexity, lower is better; the text is data.target's field): research/tasks/
    format: str = "jsonl"  # jsonl | tsv | moses (local files, prepared by our tfds builders) | tfds (catalog)
    #                        | generated (research/data/generated.py: `generator` says what)
    dir: Optional[str] = None  # local corpus folder: {split}.jsonl[.gz], {split}.tsv[.gz] or {split}.{source}
    generator: Optional[Dict[str, Any]] = None  # format=generated: {name: copy|reverse|sort|addition|scan, options}
    tfds_name: Optional[str] = None  # catalog dataset for format=tfds, e.g. wmt14_translate/de-en
    tfds_dir: str = "~/.cache/research/tfds"  # where prepared datasets are written once and read after
    source: Optional[str] = None  # field / column / file suffix of the source text (tfds: catalog default)
    target: Optional[str] = None
    train_split: str = "train"
    valid_split: str = "validation"
    test_split: str = "test"
    max_source_len: int = 128  # in pieces, EOS included
    max_target_len: int = 128
    length_policy: str = "filter"  # filter | truncate: longer training examples are dropped or cut (counted, logged)
    tokens_per_batch: int = 4096  # padded positions per batch: B x max(S, T)
    max_shapes: int = 10  # distinct (B, S, T) batch shapes, each one compilation; more shapes, less padding
    eval_max_shapes: Optional[int] = None  # null: validation reuses the training shapes, test chooses max_shapes;
    #   N: every evaluated split chooses at most N of its own (fewer eval and decode compiles, more padding)
    bucket_width: int = 1  # lengths are rounded up to a multiple of this before shapes are chosen
    pack: bool = False  # several examples per row, with segment ids and restarting positions
    num_workers: int = 0  # grain worker processes; batches do not depend on it
    max_train_examples: Optional[int] = None  # use only the first N training examples
    length_bucket: int = 4  # task=sequence: sequence accuracy is also reported per bucket of this many target symbols

    def __post_init__(self):
        # Imported here, not at the top: a task module (research/tasks/) reads its data through this package.
        from research import tasks  # noqa: PLC0415

        check(self.task in tasks.names(), "task", f"'{self.task}' is not one of {', '.join(tasks.names())}")
        check(self.format in FORMATS, "format", f"'{self.format}' is not one of {', '.join(FORMATS)}")
        check(self.format != "tfds" or bool(self.tfds_name), "tfds_name", "format=tfds needs a catalog name")
        check(self.format != "generated" or bool(self.generator), "generator",
              "format=generated needs data.generator (its name and options)")
        local = self.format not in ("tfds", "generated")
        check(not local or bool(self.dir), "dir", f"format={self.format} needs the corpus folder")
        check(not local or (bool(self.source) and bool(self.target)), "source",
              f"format={self.format} needs data.source and data.target")
        check(self.length_bucket > 0, "length_bucket", "must be positive")
        check(self.eval_max_shapes is None or self.eval_max_shapes > 0, "eval_max_shapes",
              "must be null (the training shapes) or positive")
        check(self.max_train_examples is None or self.max_train_examples > 0, "max_train_examples",
              "must be null (all) or positive")
        self.pipeline()  # checks the batching keys, naming the key

    def pipeline(self, seed: int = 0, **overrides) -> PipelineConfig:
        """The input pipeline options these keys give (`overrides`: other PipelineConfig values)."""
        options = dict(
            tokens_per_batch=self.tokens_per_batch, max_source_len=self.max_source_len,
            max_target_len=self.max_target_len, length_policy=self.length_policy, pack=self.pack,
            seed=seed, num_workers=self.num_workers, bucket_width=self.bucket_width, max_shapes=self.max_shapes,
        )
        return PipelineConfig(**{**options, **overrides})
