"""The `data` config group: which corpus, which fields, how batches are formed."""
from __future__ import annotations

import dataclasses
from typing import Optional

from research.registry import check


@dataclasses.dataclass(frozen=True)
class DataConfig:
    name: str = "custom"
    task: str = "translation"  # translation (BLEU, chrF) | summarization (ROUGE)
    format: str = "jsonl"  # jsonl (optionally .gz): one JSON object per line
    dir: str = "???"  # folder holding {train,validation,test}.jsonl[.gz]
    source: str = "???"  # field of the source text
    target: str = "???"  # field of the target text
    train_split: str = "train"
    valid_split: str = "validation"
    test_split: str = "test"
    max_source_len: int = 128  # in pieces, EOS included
    max_target_len: int = 128
    length_policy: str = "truncate"  # truncate | filter: what happens to longer examples (counted and logged)
    tokens_per_batch: int = 4096  # padded tokens per batch: batch size x the longer of S and T
    bucket_width: int = 16  # padded lengths are 1, 2, 3, 4, 6, 8, ... times this: few shapes, few compilations
    max_train_examples: Optional[int] = None  # use only the first N training examples

    def __post_init__(self):
        check(self.task in ("translation", "summarization"), "task", f"'{self.task}' is not one of translation, summarization")
        check(self.length_policy in ("truncate", "filter"), "length_policy", f"'{self.length_policy}' is not one of truncate, filter")
        check(self.max_source_len >= 2 and self.max_target_len >= 2, "max_source_len", "lengths must be at least 2")
        check(self.bucket_width > 0, "bucket_width", "must be positive")
        longest = max(self.max_source_len, self.max_target_len)
        check(self.tokens_per_batch >= longest, "tokens_per_batch",
              f"{self.tokens_per_batch} cannot hold one example of {longest} tokens")
