"""The `decode` config group: which search, its settings, and the output length.

`search` chooses the search (`generate.search` dispatches on it); the files
`conf/decode/{greedy,beam,sample}.yaml` set it and the values that go with it,
and `research/decoding/{greedy,beam,sample}.py` hold the searches of those names.
A value that only another search reads, set away from its neutral value
(beam_size 5 with search=greedy, a temperature with search=beam), is refused
rather than silently ignored.
"""
from __future__ import annotations

import dataclasses

from research.registry import check

SEARCHES = ("greedy", "beam", "sample")
COVERAGE_PENALTIES = ("none", "wu", "summary")  # research/decoding/coverage_penalty.py
# Keys only one search reads -> (that search, the value that changes nothing). Away from it under
# another search, the key is refused. length_penalty, n_best (bounded by beam_size) and seed have
# no such check: their defaults are meant to carry over when the search changes.
ONLY_FOR = {"beam_size": ("beam", 1), "temperature": ("sample", 1.0), "top_k": ("sample", 0), "top_p": ("sample", 1.0),
            "coverage_penalty": ("beam", "none"), "coverage_beta": ("beam", 0.0)}


@dataclasses.dataclass(frozen=True)
class DecodeConfig:
    search: str = "greedy"  # greedy | beam | sample
    beam_size: int = 1  # beam: hypotheses kept per input; must stay 1 for the other searches
    length_penalty: float = 0.6  # beam: GNMT alpha, ((5 + length) / 6) ** alpha; 0 = rank by log-probability
    n_best: int = 1  # beam: hypotheses returned per input, at most beam_size
    max_len_a: float = 1.5  # output length cap = a * source_length + b
    max_len_b: int = 10
    temperature: float = 1.0  # sample: logits divided by it
    top_k: int = 0  # sample: draw from the k most likely tokens; 0 = off
    top_p: float = 1.0  # sample: draw from the smallest set holding this probability (nucleus); 1.0 = off
    seed: int = 0  # sample: with the source sentence, fixes each sample
    min_len: int = 0  # every search: no EOS before this many tokens (EOS not counted); 0 = off
    no_repeat_ngram: int = 0  # every search: no n-gram of this size twice in one output (3 for summaries); 0 = off
    coverage_penalty: str = "none"  # beam: none | wu (GNMT) | summary (OpenNMT-py), research/decoding/coverage_penalty.py
    coverage_beta: float = 0.0  # beam: the penalty's weight; > 0 exactly when coverage_penalty is not none

    def __post_init__(self):
        check(self.search in SEARCHES, "search", f"'{self.search}' is not one of {', '.join(SEARCHES)}")
        check(self.beam_size >= 1, "beam_size", "must be at least 1")
        check(1 <= self.n_best <= self.beam_size, "n_best", f"must be between 1 and beam_size ({self.beam_size})")
        check(self.length_penalty >= 0, "length_penalty", "must be >= 0")
        check(self.max_len_a >= 0, "max_len_a", "must be >= 0")
        check(self.max_len_b >= 0, "max_len_b", "must be >= 0")
        check(self.max_len_a > 0 or self.max_len_b > 0, "max_len_b",
              "max_len_a and max_len_b allow no output (one must be positive)")
        check(self.temperature > 0, "temperature", "must be positive")
        check(0 < self.top_p <= 1.0, "top_p", "must be in (0, 1]")
        check(self.top_k >= 0, "top_k", "must be >= 0")
        check(self.min_len >= 0, "min_len", "must be >= 0")
        check(self.no_repeat_ngram >= 0, "no_repeat_ngram", "must be >= 0 (0 = off)")
        check(self.coverage_penalty in COVERAGE_PENALTIES, "coverage_penalty",
              f"'{self.coverage_penalty}' is not one of {', '.join(COVERAGE_PENALTIES)}")
        check(self.coverage_beta >= 0, "coverage_beta", "must be >= 0")
        check((self.coverage_penalty == "none") == (self.coverage_beta == 0), "coverage_beta",
              f"{self.coverage_beta} with coverage_penalty={self.coverage_penalty}: a penalty needs a weight > 0 "
              "and a weight needs a penalty (set both, or neither)")
        for key, (search, neutral) in ONLY_FOR.items():
            value = getattr(self, key)
            check(self.search == search or value == neutral, key,
                  f"{value} applies to search={search} only, but search={self.search} "
                  f"(choose it with decode={search} or decode.search={search}, or leave {key} at {neutral})")
