"""The `decode` config group: search and output length.

Which search runs follows from the values (see `generate.search`):
beam_size > 1 is beam search, else sample=true is sampling, else greedy.
"""
from __future__ import annotations

import dataclasses

from research.registry import check


@dataclasses.dataclass(frozen=True)
class DecodeConfig:
    beam_size: int = 1  # 1 = greedy search
    length_penalty: float = 0.6  # GNMT alpha: ((5 + length) / 6) ** alpha; beam search only
    n_best: int = 1  # hypotheses returned per input (beam search)
    max_len_a: float = 1.5  # output length cap = a * source_length + b
    max_len_b: int = 10
    sample: bool = False  # sample one output per input instead of searching (needs beam_size 1)
    temperature: float = 1.0
    top_k: int = 0  # 0 = off
    top_p: float = 1.0  # 1.0 = off
    seed: int = 0  # sampling only: with the source sentence, fixes each sample

    def __post_init__(self):
        check(self.beam_size >= 1, "beam_size", "must be at least 1")
        check(1 <= self.n_best <= self.beam_size, "n_best", f"must be between 1 and beam_size ({self.beam_size})")
        check(self.length_penalty >= 0, "length_penalty", "must be >= 0")
        check(self.max_len_a >= 0, "max_len_a", "must be >= 0")
        check(self.max_len_b >= 0, "max_len_b", "must be >= 0")
        check(self.max_len_a > 0 or self.max_len_b > 0, "max_len_b",
              "max_len_a and max_len_b allow no output (one must be positive)")
        check(not (self.sample and self.beam_size > 1), "sample",
              f"sampling draws one output per input; it cannot run with beam_size={self.beam_size} (set beam_size=1)")
        check(self.temperature > 0, "temperature", "must be positive")
        check(0 < self.top_p <= 1.0, "top_p", "must be in (0, 1]")
        check(self.top_k >= 0, "top_k", "must be >= 0")
