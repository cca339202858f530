"""Repeated n-grams in hypotheses (research/analysis/repetition.py) against hand counts and a brute-force search."""
from __future__ import annotations

import random

import pytest

from research.analysis.repetition import repeats, share


@pytest.mark.parametrize("text,n,expected", [
    ("a b c a b c", 3, True),        # the trigram "a b c" twice
    ("a b a b", 3, False),           # trigrams "a b a", "b a b": each once
    ("a b a b", 2, True),            # the bigram "a b" twice
    ("the cat sat on the mat", 2, False),
    ("the cat sat on the cat", 2, True),
    ("x y z x y w", 3, False),
    ("a a a", 2, True),              # overlapping occurrences count
    ("a b", 3, False),               # shorter than one n-gram
    ("", 3, False),
    ("  a b c \t a b c ", 3, True),  # whitespace of any kind separates words
])
def test_repeats_by_hand(text, n, expected):
    assert repeats(text, n) is expected


def _brute_force(text: str, n: int) -> bool:
    w = text.split()
    return any(w[i:i + n] == w[j:j + n] for i in range(len(w) - n + 1) for j in range(i + 1, len(w) - n + 1))


@pytest.mark.parametrize("n", [2, 3, 4])
def test_share_equals_a_brute_force_count(n):
    rng = random.Random(n)
    lines = [" ".join(rng.choice("abc") for _ in range(rng.randint(0, 12))) for _ in range(400)]  # 9% to 57% repeat
    expected = sum(_brute_force(line, n) for line in lines) / len(lines)
    assert 0.05 < expected < 0.95  # lines of both kinds
    assert share(lines, n) == expected
    assert share([], n) == 0.0
