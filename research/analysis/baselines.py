"""Lead baselines for summarization: the document's opening, scored like a system.

A summarizer that cannot beat the first sentence of its document has learnt
nothing a researcher needs; See et al. (2017) report lead-3 beside every
model for that reason. Debian synopses are one line, so here the leads are

  lead-1 sentence  the document's first sentence (`first_sentence`)
  lead-N words     its first N words, N = the mean word count of the TRAINING
                   summaries rounded (the length a system could learn; the test
                   references' own length would be a peek at the answers)

Both are plain functions of the test documents, so the report scores them
with the task's own metric and paired test against the best architecture.
"""
from __future__ import annotations

import re

# A sentence ends at . ! or ? followed by white space, or at a line break (ddtp descriptions separate paragraphs
# with "\n"). A dot inside a token (version 2.0, file.txt, e.g.) is followed by no space and does not end one;
# "e.g. " does, which costs lead-1 a few words on the documents that use it.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n")


def first_sentence(document: str) -> str:
    """The first non-empty sentence of `document`, white space collapsed ("" for an empty document)."""
    for part in _SENTENCE_END.split(document.strip()):
        words = part.split()
        if words:
            return " ".join(words)
    return ""


def first_words(document: str, n: int) -> str:
    return " ".join(document.split()[:n])


def mean_words(texts: list[str]) -> int:
    """The mean whitespace word count of `texts`, rounded, at least 1."""
    if not texts:
        raise ValueError("no training summaries to take the lead length from")
    return max(1, round(sum(len(t.split()) for t in texts) / len(texts)))


def leads(documents: list[str], train_summaries: list[str]) -> dict[str, list[str]]:
    """{baseline name: one hypothesis per document}, as the module docstring defines them."""
    n = mean_words(train_summaries)
    return {"lead-1 sentence": [first_sentence(d) for d in documents],
            f"lead-{n} words": [first_words(d, n) for d in documents]}
