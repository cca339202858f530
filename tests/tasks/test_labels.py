"""Labelled JSONL (research/data/labels.py): the label vocabulary, and the errors bad input gets."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from research.data import corpus
from research.data.errors import DataError
from research.data.labels import OFFSET, Labels, LabelledTokenizer
from research.registry import ConfigError
from tests.helpers.classification import run_config

TEXT = "a tool that converts files from one format into another, quickly and well"


def _write(folder: Path, split: str, rows: list) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / f"{split}.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


def _corpus(tmp_path: Path, train, validation, test=None, task: str = "classification", target: str = "label"):
    folder = tmp_path / "corpus"
    for split, rows in (("train", train), ("validation", validation), ("test", test or validation)):
        _write(folder, split, rows)
    cfg = run_config("cnn", tmp_path, f"data.dir={folder}", "data.name=crafted", f"data.target={target}",
                     f"data.task={task}", "tokenizer.vocab_size=60")
    return cfg


def _rows(labels, field="label"):
    return [{"text": f"{TEXT} number {i}", field: label} for i, label in enumerate(labels)]


def test_a_validation_label_train_never_saw_is_an_error_naming_it_and_the_split(tmp_path):
    cfg = _corpus(tmp_path, _rows(["admin", "games"] * 10), _rows(["admin", "web", "web", "kde"]))
    with pytest.raises(DataError) as e:
        corpus.prepare(cfg.data, cfg.tokenizer)
    msg = str(e.value)
    assert msg.startswith("validation split (") and "validation.jsonl.gz" in msg
    assert "3 label(s) that the training split never had" in msg
    assert "'web' (2x, first at line 2)" in msg and "'kde' (1x, first at line 4)" in msg and "'admin'" not in msg


def test_an_unseen_tag_is_an_error_too(tmp_path):
    cfg = _corpus(tmp_path, _rows([["x"], ["y"], []] * 5, "tags"), _rows([["x", "z"], []], "tags"),
                  task="multilabel", target="tags")
    with pytest.raises(DataError, match=r"validation split .* 1 label\(s\) .*'z' \(1x, first at line 1\)"):
        corpus.prepare(cfg.data, cfg.tokenizer)


def test_an_empty_text_is_an_error_naming_file_line_and_field(tmp_path):
    train = _rows(["admin", "games"] * 3)
    train[3]["text"] = "   "
    cfg = _corpus(tmp_path, train, _rows(["admin"]))
    with pytest.raises(DataError, match=r"train\.jsonl\.gz:4: empty text in field 'text'"):
        corpus.prepare(cfg.data, cfg.tokenizer)


@pytest.mark.parametrize("label,message", [
    ("", r"train\.jsonl\.gz:2: field 'label': a label must be a non-empty string, got \"\""),
    (7, r"train\.jsonl\.gz:2: field 'label': a label must be a non-empty string, got 7"),
    ("a\tb", r"train\.jsonl\.gz:2: field 'label': label 'a\\tb' holds a tab or line break"),
])
def test_a_bad_label_is_an_error_naming_the_line(tmp_path, label, message):
    train = _rows(["admin", label, "games"])
    cfg = _corpus(tmp_path, train, _rows(["admin"]))
    with pytest.raises(DataError, match=message):
        corpus.prepare(cfg.data, cfg.tokenizer)


def test_a_list_where_one_label_is_read_says_which_task_reads_lists(tmp_path):
    cfg = _corpus(tmp_path, _rows([["admin"], ["games"]], "tags"), _rows([["admin"]], "tags"), target="tags")
    with pytest.raises(DataError, match=r"train\.jsonl\.gz:1: the label field holds a list .*task=multilabel"):
        corpus.prepare(cfg.data, cfg.tokenizer)


def test_multilabel_needs_rows_long_enough_for_the_longest_tag_list(tmp_path):
    _corpus(tmp_path, _rows([["a", "b", "c", "d"], ["a"]] * 4, "tags"), _rows([["a"]], "tags"), task="multilabel",
            target="tags")
    cfg = run_config("cnn", tmp_path, f"data.dir={tmp_path / 'corpus'}", "data.name=crafted", "data.target=tags",
                     "data.task=multilabel", "tokenizer.vocab_size=60", "data.max_target_len=4")
    with pytest.raises(ConfigError, match="data.max_target_len: 4 holds 3 labels plus EOS, but a training example "
                                          "has 4; raise it to 5"):
        corpus.prepare(cfg.data, cfg.tokenizer)


def test_the_vocabulary_is_the_training_labels_sorted_and_round_trips(tmp_path):
    cfg = _corpus(tmp_path, _rows(["games", "admin", "games", "web"]), _rows(["web", "admin"]))
    texts = corpus.prepare(cfg.data, cfg.tokenizer)
    tok = texts.tokenizer
    assert tok.labels.names == ("admin", "games", "web") and not tok.labels.multi
    assert [tok.encode_target(t) for t in ("admin", "web")] == [[OFFSET], [OFFSET + 2]]
    assert tok.decode_target([OFFSET + 1, 3, OFFSET]) == "games"  # up to EOS
    assert [texts.valid[i]["line"] for i in range(2)] == [1, 2]
    tok.save(tmp_path / "run" / "tokenizer")
    again = LabelledTokenizer.from_folder(tmp_path / "run" / "tokenizer")
    assert again.labels.names == tok.labels.names and again.fingerprint() == tok.fingerprint()
    other = LabelledTokenizer(tok.text, Labels(["admin", "games"], False))
    assert other.fingerprint() != tok.fingerprint()  # a checkpoint of other labels is refused
    multi = Labels(["b", "a", "c"], True)
    assert multi.encode('["c", "a"]') == [OFFSET + 1, OFFSET + 2]  # ids ascending: a is 1, c is 2 in this order
    assert multi.decode(multi.encode('["c", "a"]')) == '["a", "c"]' and multi.decode([3]) == "[]"
