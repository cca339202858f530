"""tokenizer=symbols: one id per whitespace-separated symbol, the vocabulary from the training split, unknowns counted."""
from __future__ import annotations

import pytest

from research.data import symbols, tokenizer
from research.data.batch import BOS, EOS, PAD, UNK
from research.data.errors import DataError
from research.registry import ConfigError

PAIRS = [("walk twice", "WALK WALK"), ("jump", "JUMP"), ("walk left", "LTURN WALK")]


def test_vocabulary_is_every_training_symbol_most_frequent_first():
    # hand count: WALK 3, walk 2, then ties of 1 in code-point order (upper case first)
    assert symbols.build(t for p in PAIRS for t in p) == ["WALK", "walk", "JUMP", "LTURN", "jump", "left", "twice"]


def test_encode_decode_and_unknown_counts():
    vocab = symbols.Symbols(["a", "b", "c"])
    assert vocab.get_piece_size() == 7
    assert vocab.encode("c  a\tb") == [6, 4, 5]
    assert vocab.encode("a z b z y") == [4, UNK, 5, UNK, UNK]
    assert vocab.decode([4, 5, 6]) == "a b c"
    assert [vocab.id_to_piece(i) for i in (PAD, UNK, BOS, EOS)] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert vocab.unknown(["a z", "z y b"]) == {"z": 2, "y": 1}


def test_cached_tokenizer_round_trips_through_a_run_folder(tmp_path):
    cfg = tokenizer.TokenizerConfig(model_type="symbols", vocab_size=0, cache_dir=str(tmp_path / "cache"))
    tok = tokenizer.load_or_train(cfg, PAIRS, "fp")
    assert tok.paths[0].suffix == ".symbols" and tok.source_vocab == tok.target_vocab == 4 + 7
    ids = tok.encode_target("LTURN WALK WALK")
    assert tok.decode_target([*ids, EOS, *ids]) == "LTURN WALK WALK"  # stops at EOS
    assert tok.unknown(["run twice", "walk"]) == 1 and tok.unknown(["RUN LTURN"], "target") == 1
    tokenizer.save(tok, tmp_path / "run")
    again = tokenizer.from_folder(tmp_path / "run")
    assert (tmp_path / "run" / "joint.symbols").exists()
    assert again.encode_source("walk left twice") == tok.encode_source("walk left twice")
    assert tokenizer.load_or_train(cfg, [("other", "data")], "fp").paths == tok.paths  # same key: the cache is reused


def test_separate_source_and_target_vocabularies(tmp_path):
    cfg = tokenizer.TokenizerConfig(model_type="symbols", vocab_size=0, joint=False, cache_dir=str(tmp_path))
    tok = tokenizer.load_or_train(cfg, PAIRS, "fp2")
    assert tok.source_vocab == 4 + 4 and tok.target_vocab == 4 + 3  # walk twice jump left; WALK JUMP LTURN
    assert tok.encode_source("WALK") == [UNK]


@pytest.mark.parametrize("text, message", [
    ("a\n\nb\n", ":2: an empty line"),
    ("a\nb c\n", ":2: 'b c' is not one symbol"),
    ("a\nb\na\n", ":3: 'a' repeats line 1"),
    ("", "an empty symbol vocabulary"),
])
def test_bad_vocabulary_files_name_the_line(tmp_path, text, message):
    path = tmp_path / "v.symbols"
    path.write_text(text)
    with pytest.raises(DataError, match=f"v.symbols{message}" if message.startswith(":") else message):
        symbols.read(path)


def test_a_special_piece_name_in_the_data_is_refused():
    with pytest.raises(DataError, match="'</s>', the name of a special piece"):
        symbols.build(["a </s> b"])


@pytest.mark.parametrize("options, key", [(dict(vocab_size=8000), "vocab_size"), (dict(vocab_size=0, byte_fallback=True), "byte_fallback")])
def test_sentencepiece_options_are_refused_with_symbols(options, key):
    with pytest.raises(ConfigError, match=f"^{key}: "):
        tokenizer.TokenizerConfig(model_type="symbols", **options)
