"""SCAN (Lake & Baroni, 2018): navigation commands to action sequences, with compositional splits.

The grammar is finite, so every command is generated here with its meaning
instead of downloading the published files; the splits are rebuilt from the
rules the paper states. Commands and actions are whitespace-separated words;
the actions I_WALK, I_TURN_LEFT, ... are written WALK, LTURN, ...

    C -> S and S | S after S | S
    S -> V twice | V thrice | V
    V -> D[1] opposite D[2] | D[1] around D[2] | D | U
    D -> U left | U right | turn left | turn right
    U -> walk | look | run | jump
"""
from __future__ import annotations

import functools

import numpy as np

from research.data.errors import DataError

SPLITS = ("simple", "length", "addprim_jump")
Example = tuple[str, str]

_PRIMITIVES = {"walk": "WALK", "look": "LOOK", "run": "RUN", "jump": "JUMP"}
_TURNS = {"left": "LTURN", "right": "RTURN"}
_REPEATS = {"twice": 2, "thrice": 3}
_CONJUNCTIONS = ("and", "after")
_LENGTH_CUTOFF = 22  # length split: train on action sequences of at most 22 actions, test on 24..48 (the paper)
_SIMPLE_TEST_FRACTION = 0.2  # simple split: 80/20, 16,728 / 4,182 in the published files
# The published addprim_jump training file has 14,670 lines: the 13,204 commands without "jump" plus
# "jump" -> "JUMP" 1,467 times, so the primitive is seen often enough to be learned.
_ADDPRIM_JUMP_TRAIN = 14_670


def commands() -> list[str]:
    """Every SCAN command (20,910), in grammar order: single S, then S and S, then S after S."""
    return [command for command, _ in _table()]


def interpret(command: str) -> str:
    """The action sequence of one command, e.g. "run after walk left" -> "LTURN WALK RUN".

    Parses the words (a second implementation beside the generator in _table,
    so each checks the other); a command outside the grammar raises DataError
    naming the command and the first word that does not fit.
    """
    words = command.split()
    if not words:
        raise DataError(f"SCAN command {command!r}: empty")
    joins = [i for i, word in enumerate(words) if word in _CONJUNCTIONS]
    if len(joins) > 1:
        raise DataError(f"SCAN command {command!r}: unexpected word {words[joins[1]]!r} (one 'and'/'after' at most)")
    if not joins:
        return " ".join(_sentence(command, words))
    i = joins[0]
    first, second = _sentence(command, words[:i]), _sentence(command, words[i + 1:])
    return " ".join(first + second if words[i] == "and" else second + first)


def split(name: str, seed: int = 0, validation_fraction: float = 0.1) -> dict[str, list[Example]]:
    """The "train", "validation" and "test" examples of one SCAN split.

    simple: a seeded random 80/20 of all commands (published 16,728 / 4,182).
    length: train on action sequences of at most 22 actions, test on longer ones (16,990 / 3,920).
    addprim_jump: "jump" is seen only alone in training; test is every other command with
        "jump" (7,706). The published training file oversamples the primitive: "jump" -> "JUMP"
        appears 1,467 times among the 13,204 distinct commands, 14,670 lines in all; so does this.
    validation: a seeded `validation_fraction` of the published train split, held out of train
        (train + validation = the published count; test untouched). For addprim_jump it is drawn
        only from the distinct commands without "jump"; every "jump" copy stays in train.
    """
    if name not in SPLITS:
        raise DataError(f"data.generator.split='{name}': unknown SCAN split; known splits are {', '.join(SPLITS)}")
    if not 0 <= validation_fraction < 1:
        raise DataError(f"data.generator.validation_fraction={validation_fraction}: must be in [0, 1)")
    table = _table()
    test_rng, valid_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    if name == "simple":
        test_ids = set(test_rng.permutation(len(table))[:round(_SIMPLE_TEST_FRACTION * len(table))].tolist())
    elif name == "length":
        test_ids = {i for i, (_, actions) in enumerate(table) if len(actions.split()) > _LENGTH_CUTOFF}
    else:
        test_ids = {i for i, (command, _) in enumerate(table) if command != "jump" and "jump" in command.split()}
    train = [pair for i, pair in enumerate(table) if i not in test_ids]
    copies = []
    if name == "addprim_jump":
        copies = [pair for pair in train if pair[0] == "jump"] * (_ADDPRIM_JUMP_TRAIN - len(train) + 1)
        train = [pair for pair in train if pair[0] != "jump"]
    held = set(valid_rng.permutation(len(train))[:round(validation_fraction * len(train))].tolist())
    return {"train": copies + [pair for i, pair in enumerate(train) if i not in held],
            "validation": [pair for i, pair in enumerate(train) if i in held],
            "test": [pair for i, pair in enumerate(table) if i in test_ids]}


@functools.lru_cache(maxsize=1)
def _table() -> tuple[Example, ...]:
    """(command, actions) for every command, built bottom-up from the grammar (~0.1 s, cached)."""
    units = [(word, [action]) for word, action in _PRIMITIVES.items()]
    # D as (head, side): "walk left" is WALK after the turn; "turn left" is the turn alone.
    directions = [(head, side, turn, actions) for side, turn in _TURNS.items()
                  for head, actions in units + [("turn", [])]]
    verbs = [(f"{head} {side}", [turn] + actions) for head, side, turn, actions in directions] + units  # V
    verbs += [(f"{head} opposite {side}", [turn, turn] + actions) for head, side, turn, actions in directions]
    verbs += [(f"{head} around {side}", ([turn] + actions) * 4) for head, side, turn, actions in directions]
    sentences = verbs + [(f"{phrase} {word}", actions * n) for word, n in _REPEATS.items() for phrase, actions in verbs]
    table = list(sentences)  # C
    table += [(f"{s1} and {s2}", a1 + a2) for s1, a1 in sentences for s2, a2 in sentences]
    table += [(f"{s1} after {s2}", a2 + a1) for s1, a1 in sentences for s2, a2 in sentences]
    return tuple((command, " ".join(actions)) for command, actions in table)


def _sentence(command: str, words: list[str]) -> list[str]:
    """S -> V twice | V thrice | V."""
    if words and words[-1] in _REPEATS:
        return _verb(command, words[:-1]) * _REPEATS[words[-1]]
    return _verb(command, words)


def _verb(command: str, words: list[str]) -> list[str]:
    """V -> D opposite D | D around D | D | U, where D is "u left", "turn right", ..."""
    def fail(word: str, why: str = "") -> None:
        raise DataError(f"SCAN command {command!r}: unexpected word {word!r}{why}")
    if not words:
        raise DataError(f"SCAN command {command!r}: a phrase is empty (nothing before or after 'and'/'after')")
    head = words[0]
    if head not in _PRIMITIVES and head != "turn":
        fail(head)
    if words == ["turn"]:
        raise DataError(f"SCAN command {command!r}: 'turn' must be followed by 'left' or 'right'")
    actions = [_PRIMITIVES[head]] if head in _PRIMITIVES else []
    if len(words) == 1:
        return actions
    modifier, side = (None, words[1]) if len(words) == 2 else (words[1], words[2])
    if modifier not in (None, "opposite", "around"):
        fail(modifier)
    if side not in _TURNS:
        fail(side, " (expected 'left' or 'right')")
    if len(words) > 3:
        fail(words[3])
    turn = _TURNS[side]
    if modifier == "around":
        return ([turn] + actions) * 4
    return [turn] * (2 if modifier == "opposite" else 1) + actions
