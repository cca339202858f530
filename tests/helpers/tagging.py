"""Tiny taggers on the shipped ddtp_punct_en sample and on crafted corpora, set up as a run sets them up.

The model, step and batch helpers are the classifier tests' (tests/helpers/classification.py): they ask the
run's task for everything, so they serve any task.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

from research.config import resolve
from research.data import corpus
from tests.conftest import compose_config
from tests.helpers.classification import OPTIM, TINY, batches, trainer  # noqa: F401 (re-exported for the tests)

# One batch shape of 16 rows, 48 pieces and 48 words; longer training sentences are cut (their later words
# lose their first piece and so their loss), as a run with length_policy=truncate does.
SHORT = ["data.max_source_len=48", "data.max_target_len=48", "data.tokens_per_batch=768", "data.max_shapes=1",
         "data.length_policy=truncate", "tokenizer.vocab_size=400"]


def run_config(encoder: str, tmp: Path, *extra: str, data: str = "ddtp_punct_en_sample"):
    overrides = [f"data={data}", f"encoder={encoder}", "model.d_model=16", "encoder.dropout=0", *TINY[encoder],
                 *SHORT, *OPTIM, f"tokenizer.cache_dir={tmp}/spm", f"data.tfds_dir={tmp}/tfds", *extra]
    return resolve(compose_config(overrides))


def sample_corpus(tmp: Path) -> corpus.Corpus:
    """The sample read and tokenized as a run does it (the tokenizer does not depend on the encoder)."""
    cfg = run_config("cnn", tmp)
    return corpus.prepare(cfg.data, cfg.tokenizer)


def write_jsonl(folder: Path, split: str, rows: list) -> Path:
    """rows (dicts, or raw lines as strings) as `{split}.jsonl.gz` in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{split}.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def write_text(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder / name


def crafted_config(tmp: Path, folder: Path, *extra: str, task: str = "tagging", fmt: str = "jsonl",
                   source: str = "tokens", target: str = "tags", vocab: int = 60):
    """A tiny run config on a crafted corpus folder."""
    return run_config("cnn", tmp, f"data.dir={folder}", "data.name=crafted", f"data.task={task}", f"data.format={fmt}",
                      f"data.source={source}", f"data.target={target}", f"tokenizer.vocab_size={vocab}", *extra)
