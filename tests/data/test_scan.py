"""SCAN commands, meanings and splits against the paper's grammar, hand-worked examples and published counts."""
import itertools

import pytest

from research.data.diagnostics.scan import SPLITS, commands, interpret, split
from research.data.errors import DataError

HAND_CHECKED = {
    "jump twice": "JUMP JUMP",
    "turn left": "LTURN",
    "walk opposite right": "RTURN RTURN WALK",
    "look around left": "LTURN LOOK LTURN LOOK LTURN LOOK LTURN LOOK",
    "run after walk left": "LTURN WALK RUN",
    "jump thrice and turn opposite left": "JUMP JUMP JUMP LTURN LTURN",
    "turn around right": "RTURN RTURN RTURN RTURN",
    "walk right twice after turn opposite left": "LTURN LTURN RTURN WALK RTURN WALK",
}


def _grammar():
    """The command language written out level by level, independently of the module."""
    u = ["walk", "look", "run", "jump"]
    d = [f"{x} {side}" for x in u + ["turn"] for side in ("left", "right")]
    v = d + u + [f"{x} {mod} {side}" for x in u + ["turn"]
                 for mod in ("opposite", "around") for side in ("left", "right")]
    s = v + [f"{x} {rep}" for x in v for rep in ("twice", "thrice")]
    c = s + [f"{a} {conj} {b}" for a, b in itertools.product(s, s) for conj in ("and", "after")]
    return u, d, v, s, c


def test_grammar_counts_and_commands_match():
    u, d, v, s, c = _grammar()
    assert (len(u), len(d), len(v), len(s)) == (4, 10, 34, 102)
    assert len(c) == 102 + 2 * 102 * 102 == 20_910
    generated = commands()
    assert len(generated) == len(set(generated)) == 20_910
    assert set(generated) == set(c)
    assert commands() == generated  # deterministic order


@pytest.mark.parametrize("command,actions", sorted(HAND_CHECKED.items()))
def test_hand_checked_meanings(command, actions):
    assert interpret(command) == actions


def test_interpret_agrees_with_generated_targets():
    # interpret() parses; the splits carry the targets built bottom-up from the grammar: two implementations.
    pairs = {pair for name in ("length",) for part in split(name).values() for pair in part}
    assert len(pairs) == 20_910
    assert all(interpret(command) == actions for command, actions in pairs)


@pytest.mark.parametrize("command,word", [("walk sideways", "sideways"), ("fly", "fly"),
                                          ("walk and run and look", "and"), ("walk around left twice thrice", "twice"),
                                          ("turn", "turn"), ("walk after", "after")])
def test_commands_outside_the_grammar_name_the_word(command, word):
    with pytest.raises(DataError) as error:
        interpret(command)
    assert repr(command) in str(error.value) and word in str(error.value)


def _sources(pairs):
    return {command for command, _ in pairs}


@pytest.mark.parametrize("name", SPLITS)
def test_splits_are_disjoint_cover_everything_and_are_deterministic(name):
    parts = split(name)
    assert set(parts) == {"train", "validation", "test"}
    train, valid, test = (_sources(parts[k]) for k in ("train", "validation", "test"))
    assert not (train & valid) and not (train & test) and not (valid & test)
    assert train | valid | test == set(commands())
    assert split(name) == parts
    assert split(name, seed=1)["validation"] != parts["validation"]


def test_simple_split_counts():
    parts = split("simple")
    assert (len(parts["train"]) + len(parts["validation"]), len(parts["test"])) == (16_728, 4_182)
    assert abs(len(parts["validation"]) - 0.1 * 16_728) <= 1
    assert _sources(split("simple", seed=1)["test"]) != _sources(parts["test"])


def test_length_split_counts_and_cutoff():
    parts = split("length")
    assert (len(parts["train"]) + len(parts["validation"]), len(parts["test"])) == (16_990, 3_920)
    assert all(len(actions.split()) <= 22 for _, actions in parts["train"] + parts["validation"])
    assert all(len(actions.split()) > 22 for _, actions in parts["test"])


def test_addprim_jump_counts_and_jump_only_alone_in_training():
    parts = split("addprim_jump")
    seen = parts["train"] + parts["validation"]
    assert (len(seen), len(parts["test"])) == (14_670, 7_706)
    assert len(_sources(seen)) == 13_204
    assert all(command == "jump" or "jump" not in command.split() for command, _ in seen)
    assert all("jump" in command.split() and command != "jump" for command, _ in parts["test"])
    jumps = [pair for pair in parts["train"] if pair[0] == "jump"]
    assert set(jumps) == {("jump", "JUMP")} and len(jumps) == 14_670 - 13_204 + 1
    assert all(command != "jump" for command, _ in parts["validation"])
    assert len(parts["validation"]) == round(0.1 * 13_203)


def test_unknown_split_lists_the_known_ones():
    with pytest.raises(DataError) as error:
        split("around_right")
    assert all(name in str(error.value) for name in SPLITS)
