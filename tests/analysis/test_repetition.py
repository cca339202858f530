"""Repeated n-grams in hypotheses (research/analysis/repetition.py) against hand counts and a brute-force search."""
from __future__ import annotations

import random

import pytest

from research.analysis.repetition import by_source, repeats, share, source_groups


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


def test_source_groups_against_a_hand_count():
    sources = ["a b", "a a", "a b c", "a b c d", "x y x z", "p q r s t", "u v w u v w"]  # lengths 2 2 3 4 4 5 6
    groups = source_groups(sources)
    # thirds: the lengths at 7 // 3 = 2 and 14 // 3 = 4 of the sorted [2, 2, 3, 4, 4, 5, 6] are 3 and 4
    assert groups == {"source repeats a word": [1, 4, 6], "source repeats none": [0, 2, 3, 5],
                      "source of at most 3 words": [0, 1, 2], "source of 4 words": [3, 4],
                      "source of more than 4 words": [5, 6]}
    # every length the same: the middle and top thirds are empty and left out
    assert list(source_groups(["a b", "c d", "e f"])) == ["source repeats none", "source of at most 2 words"]


def test_by_source_shares_per_group_and_seed():
    sources = ["a a", "b c", "d e f", "g g h"]  # repeats: 0 and 3; thirds at lengths 2 and 3 (sorted [2, 2, 3, 3])
    references = ["x y z x y z", "x y", "x y z", "k l m k l m"]  # the references repeat where the sources do
    hyps = {"looper": [["p q r p q r"] * 4, ["p q r p q r", "s", "p q r p q r", "t"]]}
    found = by_source(hyps, references, sources)
    assert found["groups"] == {"source repeats a word": 2, "source repeats none": 2, "source of at most 2 words": 2,
                               "source of 3 words": 2}  # no source is longer than the top third's boundary, 3
    assert found["references"] == {"source repeats a word": 1.0, "source repeats none": 0.0,
                                   "source of at most 2 words": 0.5, "source of 3 words": 0.5}
    # seed 0 loops everywhere; seed 1 on examples 0 and 2 (one repeating source, one not; one per length third)
    assert found["mean"]["looper"] == pytest.approx({g: 0.75 for g in found["groups"]})
    assert found["std"]["looper"] == pytest.approx({g: 0.5 ** 0.5 / 2 for g in found["groups"]})
