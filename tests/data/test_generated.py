"""data.format=generated: diagnostic datasets prepared once into tfds, keyed by their options and code."""
from __future__ import annotations

import pytest

from research.config import resolve
from research.data import corpus, generated
from research.data.diagnostics import algorithmic, scan
from research.data.errors import DataError
from research.registry import ConfigError
from tests.conftest import compose_config

SMALL = dict(name="reverse", max_len=3, alphabet_size=4, train_size=50, validation_size=10, test_size=20)


def test_prepared_splits_hold_what_the_generator_makes(tmp_path):
    opened = generated.load_splits(SMALL, ("train", "validation", "test_longer"), str(tmp_path), "reverse")
    expected = algorithmic.generate(algorithmic.AlgorithmicConfig("reverse", **{k: v for k, v in SMALL.items() if k != "name"}))
    for split, pairs in expected.items():
        assert [(opened[split][i]["source"], opened[split][i]["target"]) for i in range(len(opened[split]))] == pairs


def test_same_options_reuse_the_prepared_data_and_other_options_prepare_anew(tmp_path):
    first = generated.prepare(SMALL, str(tmp_path), "reverse").data_dir
    assert generated.prepare(dict(SMALL), str(tmp_path), "reverse").data_dir == first
    assert generated.prepare({**SMALL, "seed": 1}, str(tmp_path), "reverse").data_dir != first
    assert generated.fingerprint(SMALL) != generated.fingerprint({**SMALL, "name": "copy"})


def test_scan_through_the_data_config(tmp_path):
    cfg = resolve(compose_config(["data=scan_addprim_jump", "tokenizer=symbols", f"data.tfds_dir={tmp_path}"])).data
    splits = corpus.load(cfg, ("train", "validation", "test"))
    published = scan.split("addprim_jump")
    assert {k: len(v) for k, v in splits.items()} == {k: len(v) for k, v in published.items()}
    assert len(splits["train"]) + len(splits["validation"]) == 14_670 and len(splits["test"]) == 7_706


@pytest.mark.parametrize("options, message", [
    ({"name": "copyy"}, "data.generator.name='copyy': not one of copy, reverse, sort, addition, scan"),
    ({"name": "copy", "length": 3}, "data.generator.length: not an option of the copy generator"),
    ({"name": "scan", "split": "lenght"}, "lenght"),
    ({"name": "scan"}, "data.generator.split: missing"),
    ({**SMALL, "max_len": 0}, "data.generator.max_len=0"),
])
def test_bad_generator_options_name_the_key(tmp_path, options, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(")):
        generated.load_splits(options, ("train",), str(tmp_path), "x")


def test_a_split_the_generator_does_not_make_is_named(tmp_path):
    with pytest.raises(DataError, match="makes the splits .*'test_longer'.*, not 'test'"):
        generated.load_splits(SMALL, ("train", "test"), str(tmp_path), "reverse")


def test_generated_data_needs_the_symbols_tokenizer():
    with pytest.raises(ConfigError, match="^tokenizer: data=reverse is generated symbol sequences: add tokenizer=symbols"):
        resolve(compose_config(["data=reverse"]))
    with pytest.raises(ConfigError, match="^data.generator: format=generated needs"):
        resolve(compose_config(["data=reverse", "tokenizer=symbols", "data.generator=null"]))
