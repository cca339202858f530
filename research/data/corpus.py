"""From the `data` config to sources, a tokenizer and batch iterators.

The one place that knows how config keys map onto the tfds builders and the
grain pipeline, so training, evaluation and the benchmarks read data alike.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
from typing import Any

import tensorflow_datasets as tfds

from research import tasks
from research.data import builders, generated
from research.data.config import DataConfig
from research.data.pipeline import eval_iterator, train_iterator
from research.data.tokenizer import Tokenizer, TokenizerConfig, load_or_train

log = logging.getLogger(__name__)


class Head:
    """The first n examples of a random-access source."""

    def __init__(self, source: Any, n: int):
        self._source, self._n = source, min(n, len(source))

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int):
        if not 0 <= i < self._n:
            raise IndexError(i)
        return self._source[i]

    def __getitems__(self, indices):
        return [self[i] for i in indices]


def load(cfg: DataConfig, splits: tuple[str, ...]) -> dict[str, Any]:
    """split -> random access to {"source": str, "target": str}, read as the task reads them
    (`Task.read`: `read_pairs` for the seq2seq tasks); prepares local corpora once."""
    tfds.disable_progress_bar()  # progress bars would interleave with the training log
    out = tasks.get(cfg.task).read(cfg, splits)
    if cfg.max_train_examples and cfg.train_split in out:
        out[cfg.train_split] = Head(out[cfg.train_split], cfg.max_train_examples)
    return out


def read_pairs(cfg: DataConfig, splits: tuple[str, ...]) -> dict[str, Any]:
    """The seq2seq tasks' reader: text pairs of a generated dataset, a tfds catalog dataset or local files."""
    if cfg.format == "generated":
        return generated.load_splits(cfg.generator, splits, cfg.tfds_dir, cfg.name)
    path = cfg.tfds_name if cfg.format == "tfds" else str(cfg.dir)
    return builders.load_splits(cfg.format, path, cfg.source, cfg.target, splits, cfg.tfds_dir, name=cfg.name)


def pairs(source: Any) -> list[tuple[str, str]]:
    examples = source.__getitems__(range(len(source))) if hasattr(source, "__getitems__") else [source[i] for i in range(len(source))]
    return [(e["source"], e["target"]) for e in examples]


def fingerprint(examples: list[tuple[str, str]]) -> str:
    """A content hash of the examples: the same text gives the same runs."""
    h = hashlib.sha256()
    for s, t in examples:
        h.update(s.encode())
        h.update(b"\0")
        h.update(t.encode())
        h.update(b"\n")
    return h.hexdigest()[:16]


def tokenizer(cfg: TokenizerConfig, train: list[tuple[str, str]], data_fingerprint: str) -> Tokenizer:
    return load_or_train(cfg, train, data_fingerprint)


@dataclasses.dataclass(frozen=True)
class Corpus:
    """What a training run reads: its two splits and the tokenizer trained on the first."""

    tokenizer: Tokenizer
    train: Any  # random access to {"source", "target"} strings
    valid: Any
    fingerprint: str  # of the training examples' text


def prepare(cfg: DataConfig, tokenizer_cfg: TokenizerConfig) -> Corpus:
    """Loads (preparing once) the training and validation splits and trains or reuses the tokenizer
    (`Task.tokenizer`); both splits then pass the task's `check_split` before anything trains."""
    task = tasks.get(cfg.task)
    splits = load(cfg, (cfg.train_split, cfg.valid_split))
    train, valid = splits[cfg.train_split], splits[cfg.valid_split]
    train_pairs = pairs(train)
    fp = fingerprint(train_pairs)
    tok = task.tokenizer(tokenizer_cfg, train_pairs, fp)
    for name, split in ((cfg.train_split, train), (cfg.valid_split, valid)):
        task.check_split(tok, split, name, cfg)
    log.info("data: %d train, %d validation pairs; vocab %d/%d", len(train), len(valid), tok.source_vocab, tok.target_vocab)
    return Corpus(tokenizer=tok, train=train, valid=valid, fingerprint=fp)


def source_features(tok: Any):
    """The tokenizer's per-piece source features (`source_features`: source text -> {batch key: values}) if it
    has them, else None: a tagger's tokenizer marks the pieces that start words (research/data/tags.py);
    the seq2seq and classification tokenizers have none, so their batches keep the standard keys."""
    return getattr(tok, "source_features", None)


def train_batches(source: Any, tok: Tokenizer, cfg: DataConfig, seed: int):
    return train_iterator(source, tok.encode_source, tok.encode_target, cfg.pipeline(seed), source_features(tok))


def eval_batches(source: Any, tok: Tokenizer, cfg: DataConfig, shapes=None, limits=(None, None)):
    """Every example once and whole (cut only to the model's `limits`, see `eval_iterator`);
    `batch["index"]` is each row's example (-1: an empty row).

    `shapes` (the training ones, so that validation adds no loss compiles) give way to
    `cfg.eval_max_shapes` where that is set: in short runs the eval and decode programs
    compiled for each shape cost more than the padding a single shape adds.
    """
    options = dict(num_workers=0, log_every=0)
    if cfg.eval_max_shapes is not None:
        shapes, options["max_shapes"] = None, cfg.eval_max_shapes
    return eval_iterator(source, tok.encode_source, tok.encode_target,
                         cfg.pipeline(0, **options), shapes, limits, source_features(tok))
