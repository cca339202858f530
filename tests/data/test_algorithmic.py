"""Algorithmic diagnostics: exact targets, disjoint splits, length ranges and capacity errors."""
import collections
import dataclasses
import itertools
import string

import pytest

from research.data.diagnostics.algorithmic import TASKS, AlgorithmicConfig, generate
from research.data.errors import DataError

SMALL = dict(max_len=5, test_factor=2, train_size=600, validation_size=60, test_size=200)


def _length(task, source):
    """Symbols, or for addition the digits of the longer operand."""
    if task == "addition":
        return max(len(part.split()) for part in source.split(" + "))
    return len(source.split())


@pytest.mark.parametrize("task", TASKS)
def test_deterministic_by_seed(task):
    cfg = AlgorithmicConfig(task, **SMALL)
    data = generate(cfg)
    assert generate(cfg) == data
    other = generate(dataclasses.replace(cfg, seed=1))
    assert all(other[k] != data[k] for k in data)


@pytest.mark.parametrize("task", TASKS)
def test_splits_disjoint_without_duplicates_and_lengths_in_range(task):
    cfg = AlgorithmicConfig(task, alphabet_size=26 if task != "addition" else 10, max_len=8, train_size=2000,
                            validation_size=200, test_size=500)
    data = generate(cfg)
    assert {k: len(v) for k, v in data.items()} == {"train": 2000, "validation": 200, "test_longer": 500}
    sources = {k: [s for s, _ in v] for k, v in data.items()}
    for names in sources.values():
        assert len(set(names)) == len(names)
    for a, b in itertools.combinations(sources.values(), 2):
        assert not set(a) & set(b)
    for name in ("train", "validation"):
        assert all(1 <= _length(task, s) <= 8 for s in sources[name])
    assert all(9 <= _length(task, s) <= 16 for s in sources["test_longer"])
    # every length of each range occurs (here each has room for its share)
    assert {_length(task, s) for s in sources["train"]} == set(range(1, 9))
    assert {_length(task, s) for s in sources["test_longer"]} == set(range(9, 17))


@pytest.mark.parametrize("task", ["copy", "reverse", "sort"])
def test_sequence_targets(task):
    cfg = AlgorithmicConfig(task, alphabet_size=5, **SMALL)
    letters = set(string.ascii_lowercase[:5])
    for pairs in generate(cfg).values():
        for source, target in pairs:
            src, tgt = source.split(), target.split()
            assert set(src) <= letters
            if task == "copy":
                assert tgt == src
            elif task == "reverse":
                assert tgt == src[::-1]
            else:
                assert collections.Counter(tgt) == collections.Counter(src)
                assert all(x <= y for x, y in zip(tgt, tgt[1:]))


def test_addition_targets_are_python_int_sums():
    for pairs in generate(AlgorithmicConfig("addition", **SMALL)).values():
        for source, target in pairs:
            a, plus, b = source.partition(" + ")
            assert plus and "+" not in b
            for operand in (a.split(), b.split()):
                assert all(d in string.digits for d in operand)
                assert operand == ["0"] or operand[0] != "0"  # no leading zeros
            assert target == " ".join(str(int("".join(a.split())) + int("".join(b.split()))))


def test_addition_operands_of_unequal_length_occur():
    train = generate(AlgorithmicConfig("addition", **SMALL))["train"]
    shapes = {tuple(len(part.split()) for part in s.split(" + ")) for s, _ in train}
    assert {(5, 1), (1, 5), (3, 3), (2, 4)} <= shapes


def test_exhaustive_small_case_uses_every_source_once():
    cfg = AlgorithmicConfig("copy", alphabet_size=2, max_len=3, train_size=10, validation_size=4, test_size=5)
    data = generate(cfg)
    seen = [s for s, _ in data["train"] + data["validation"]]
    everything = [" ".join(w) for n in (1, 2, 3) for w in itertools.product("ab", repeat=n)]
    assert len(everything) == 14
    assert sorted(seen) == sorted(everything)


def test_exhaustive_addition_and_its_capacity():
    # max_len=2: every pair of numbers 0..99, 10,000 sources
    data = generate(AlgorithmicConfig("addition", max_len=2, train_size=9_000, validation_size=1_000, test_size=10))
    seen = {s for s, _ in data["train"] + data["validation"]}
    assert seen == {f"{' '.join(str(a))} + {' '.join(str(b))}" for a in range(100) for b in range(100)}
    with pytest.raises(DataError, match=r"max_len=2: only 10,000 distinct sources of lengths 1\.\.2"):
        AlgorithmicConfig("addition", max_len=2, train_size=9_000, validation_size=1_001)


def test_short_lengths_are_used_up_and_the_rest_shares_the_remainder():
    # alphabet 26, L=4: lengths 1 and 2 hold 26 and 676 sources, less than a uniform share of 1,000
    train = generate(AlgorithmicConfig("copy", alphabet_size=26, max_len=4, train_size=4000, validation_size=0,
                                       test_size=10))["train"]
    counts = collections.Counter(len(s.split()) for s, _ in train)
    assert counts[1] == 26 and counts[2] == 676
    assert abs(counts[3] - counts[4]) < 300


def test_test_longer_does_not_depend_on_train_size():
    a = generate(AlgorithmicConfig("reverse", **SMALL))
    b = generate(AlgorithmicConfig("reverse", **{**SMALL, "train_size": 700}))
    assert a["test_longer"] == b["test_longer"]


@pytest.mark.parametrize("kwargs,expected", [
    (dict(task="copy", alphabet_size=2, max_len=3),
     "data.generator.alphabet_size=2, max_len=3: only 14 distinct sources of lengths 1..3, "
     "fewer than the 10,500 train + validation examples asked for"),
    (dict(task="sort", alphabet_size=2, max_len=3, train_size=10, validation_size=4),
     "data.generator.alphabet_size=2, max_len=3, test_factor=2: only 112 distinct sources of lengths 4..6, "
     "fewer than the 1,000 test examples asked for"),
    (dict(task="addition", max_len=1), "data.generator.max_len=1: only 100 distinct sources"),
])
def test_capacity_errors_name_the_options_and_counts(kwargs, expected):
    with pytest.raises(DataError) as error:
        AlgorithmicConfig(**kwargs)
    assert expected in str(error.value)


@pytest.mark.parametrize("kwargs,option", [
    (dict(task="copy", max_len=0), "data.generator.max_len=0"),
    (dict(task="copy", max_len=-3), "data.generator.max_len=-3"),
    (dict(task="copy", test_factor=1), "data.generator.test_factor=1"),
    (dict(task="copy", alphabet_size=1), "data.generator.alphabet_size=1"),
    (dict(task="copy", alphabet_size=27), "data.generator.alphabet_size=27"),
    (dict(task="copy", train_size=0), "data.generator.train_size=0"),
    (dict(task="multiply"), "data.generator.task='multiply'"),
])
def test_bad_options_are_named(kwargs, option):
    with pytest.raises(DataError) as error:
        AlgorithmicConfig(**kwargs)
    assert option in str(error.value)


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(DataError) as error:
        AlgorithmicConfig("multiply")
    assert all(task in str(error.value) for task in TASKS)
