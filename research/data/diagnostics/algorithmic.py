"""Algorithmic diagnostics (copy, reverse, sort, addition) with a test split longer than training.

Each task has an exact answer a model can only reach by learning the algorithm,
so accuracy on `test_longer` (sources of lengths L+1..k*L, none seen in training)
separates generalisation from memorised lengths. Sources are whitespace-separated
symbols: the letters a, b, c, ... for copy/reverse/sort, digits and "+" for addition.

Sampling is exact and without replacement, so small spaces can be used up
completely: the space of one split is a tree (lengths, then for addition the
other operand's digit count, then which operand is the longer), every level is
chosen uniformly among the branches that still have unused sources, and each
leaf is a product of digit ranges whose members are drawn by index.
"""
from __future__ import annotations

import dataclasses
import math
import string
from typing import Union

import numpy as np

from research.data.errors import DataError

TASKS = ("copy", "reverse", "sort", "addition")
Example = tuple[str, str]

_LETTERS = np.array(list(string.ascii_lowercase))
_DIGITS = np.array(list(string.digits))
_INDEX_LIMIT = 2**62  # leaves up to this size are drawn by index; larger ones by rejection (collisions ~never)
_MAX_ROUNDS = 100  # rejection rounds before giving up; one round is nearly always enough above _INDEX_LIMIT


@dataclasses.dataclass(frozen=True)
class AlgorithmicConfig:
    task: str  # copy | reverse | sort | addition
    max_len: int = 8  # L: train and validation sources have lengths 1..L (addition: digits of the longer operand)
    test_factor: int = 2  # k: test_longer sources have lengths L+1..k*L; 2 doubles the length, the usual probe
    alphabet_size: int = 10  # copy/reverse/sort: symbols a, b, c, ... (2..26); ignored by addition (digits 0-9)
    train_size: int = 10000
    validation_size: int = 500  # drawn from the training lengths, disjoint from train
    test_size: int = 1000
    seed: int = 0

    def __post_init__(self):
        if self.task not in TASKS:
            raise DataError(f"data.generator.task='{self.task}': unknown task; known tasks are {', '.join(TASKS)}")
        for name, least in (("max_len", 1), ("test_factor", 2), ("train_size", 1), ("validation_size", 0),
                            ("test_size", 0), ("seed", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise DataError(f"data.generator.{name}={value!r}: must be an integer")
            if value < least:
                raise DataError(f"data.generator.{name}={value}: must be at least {least}")
        if self.task != "addition" and not (isinstance(self.alphabet_size, int) and 2 <= self.alphabet_size <= 26):
            raise DataError(f"data.generator.alphabet_size={self.alphabet_size!r}: must be between 2 and 26 "
                            f"(the letters a-z)")
        self._check_capacity(1, self.max_len, self.train_size + self.validation_size, "train + validation", "")
        self._check_capacity(self.max_len + 1, self.test_factor * self.max_len, self.test_size, "test",
                             f", test_factor={self.test_factor}")

    def _check_capacity(self, lo: int, hi: int, asked: int, what: str, extra: str) -> None:
        """Fails when the lengths lo..hi hold fewer distinct sources than `asked` (no duplicates are allowed)."""
        have = _capacity(_tree(self, lo, hi))
        if have < asked:
            options = f"max_len={self.max_len}" if self.task == "addition" else \
                f"alphabet_size={self.alphabet_size}, max_len={self.max_len}"
            raise DataError(f"data.generator.{options}{extra}: only {have:,} distinct sources of lengths {lo}..{hi}, "
                            f"fewer than the {asked:,} {what} examples asked for")


def generate(cfg: AlgorithmicConfig) -> dict[str, list[Example]]:
    """The splits "train", "validation" (lengths 1..L) and "test_longer" (L+1..k*L), shuffled.

    No source repeats within or across splits. Train and test_longer come from
    separate seed streams, so changing train_size leaves test_longer unchanged.
    """
    seen, longer = np.random.SeedSequence(cfg.seed).spawn(2)
    pool = _examples(cfg, np.random.default_rng(seen), 1, cfg.max_len, cfg.train_size + cfg.validation_size)
    test = _examples(cfg, np.random.default_rng(longer), cfg.max_len + 1, cfg.test_factor * cfg.max_len,
                     cfg.test_size)
    return {"train": pool[:cfg.train_size], "validation": pool[cfg.train_size:], "test_longer": test}


@dataclasses.dataclass(frozen=True)
class _Leaf:
    """All sources whose position i holds offsets[i] + 0..radices[i]-1; '+' goes before position plus_at."""
    radices: tuple[int, ...]
    offsets: tuple[int, ...]
    plus_at: int = -1  # -1: no "+" (copy/reverse/sort)


_Node = Union[_Leaf, tuple]  # a leaf, or a tuple of nodes chosen among uniformly


def _tree(cfg: AlgorithmicConfig, lo: int, hi: int) -> tuple:
    """The source space of lengths lo..hi, one branch per length."""
    if cfg.task != "addition":
        return tuple(_Leaf((cfg.alphabet_size,) * n, (0,) * n) for n in range(lo, hi + 1))
    # Length n: the other operand has m = 1..n digits, then either operand may be the longer one.
    return tuple(tuple((_operands(n, n),) if m == n else (_operands(n, m), _operands(m, n)) for m in range(1, n + 1))
                 for n in range(lo, hi + 1))


def _operands(a_digits: int, b_digits: int) -> _Leaf:
    """"a + b" with a and b of exactly these digit counts, no leading zeros (0 itself has one digit)."""
    def number(d):
        return ((10,), (0,)) if d == 1 else ((9,) + (10,) * (d - 1), (1,) + (0,) * (d - 1))
    (ra, oa), (rb, ob) = number(a_digits), number(b_digits)
    return _Leaf(ra + rb, oa + ob, plus_at=a_digits)


def _capacity(node: _Node) -> int:
    """How many distinct sources the node holds, as an exact Python int (26**16 overflows int64)."""
    return math.prod(node.radices) if isinstance(node, _Leaf) else sum(_capacity(child) for child in node)


def _allocate(rng: np.random.Generator, count: int, capacities: list[int]) -> list[int]:
    """Splits `count` uniformly among branches, none above its capacity: overflow is redrawn among the rest.

    Each round either places everything or fills at least one branch, so it ends
    after at most len(capacities) rounds (the caller has checked the total fits).
    """
    counts = [0] * len(capacities)
    left = count
    while left:
        active = [i for i, cap in enumerate(capacities) if counts[i] < cap]
        for i, drawn in zip(active, rng.multinomial(left, [1 / len(active)] * len(active))):
            take = min(int(drawn), capacities[i] - counts[i])
            counts[i] += take
            left -= take
    return counts


def _sample(rng: np.random.Generator, node: _Node, count: int) -> list[tuple[_Leaf, np.ndarray]]:
    """`count` distinct sources from the node, as (leaf, [n, positions] symbol ids) groups."""
    if isinstance(node, _Leaf):
        return [(node, _draw(rng, node, count))] if count else []
    counts = _allocate(rng, count, [_capacity(child) for child in node])
    return [group for child, k in zip(node, counts) for group in _sample(rng, child, k)]


def _draw(rng: np.random.Generator, leaf: _Leaf, count: int) -> np.ndarray:
    """`count` distinct members of the leaf, [count, positions] symbol ids, uniformly without replacement."""
    radices = np.array(leaf.radices, dtype=np.int64)
    size = math.prod(leaf.radices)
    if size <= _INDEX_LIMIT:
        index = rng.choice(size, size=count, replace=False)
        digits = np.empty((count, len(radices)), dtype=np.int64)
        for i in reversed(range(len(radices))):  # mixed-radix decoding, last position fastest
            index, digits[:, i] = np.divmod(index, radices[i])
    else:
        digits = np.empty((0, len(radices)), dtype=np.int64)
        for _ in range(_MAX_ROUNDS):
            fresh = rng.integers(0, radices, size=(count - len(digits), len(radices)))
            digits = np.concatenate([digits, fresh])
            _, first = np.unique(digits, axis=0, return_index=True)
            digits = digits[np.sort(first)]
            if len(digits) == count:
                break
        else:
            raise DataError(f"could not draw {count:,} distinct sources of {size:,} in {_MAX_ROUNDS} rounds")
    return digits + np.array(leaf.offsets, dtype=np.int64)


def _render(task: str, leaf: _Leaf, ids: np.ndarray) -> list[Example]:
    """(source, target) strings for a [n, positions] block of symbol ids from one leaf."""
    if task == "addition":
        digits = _DIGITS[ids]
        a = ["".join(row) for row in digits[:, :leaf.plus_at]]
        b = ["".join(row) for row in digits[:, leaf.plus_at:]]
        return [(" ".join(x) + " + " + " ".join(y), " ".join(str(int(x) + int(y)))) for x, y in zip(a, b)]
    sources = [" ".join(row) for row in _LETTERS[ids]]
    if task == "copy":
        return list(zip(sources, sources))
    targets = _LETTERS[ids[:, ::-1]] if task == "reverse" else _LETTERS[np.sort(ids, axis=1)]
    return list(zip(sources, (" ".join(row) for row in targets)))


def _examples(cfg: AlgorithmicConfig, rng: np.random.Generator, lo: int, hi: int, count: int) -> list[Example]:
    """`count` distinct examples with lengths lo..hi, in random order (groups come out sorted by length)."""
    pairs = [pair for leaf, ids in _sample(rng, _tree(cfg, lo, hi), count) for pair in _render(cfg.task, leaf, ids)]
    return [pairs[i] for i in rng.permutation(len(pairs))]
