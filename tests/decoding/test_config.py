"""The `decode` group: the file name chooses the search, and values of another search are refused."""
from __future__ import annotations

import dataclasses

import pytest
from omegaconf import OmegaConf

from research.config import REPO, resolve
from research.decoding.config import SEARCHES, DecodeConfig
from research.registry import ConfigError, build_dataclass
from tests.conftest import compose_config

FILES = sorted(p.stem for p in (REPO / "conf" / "decode").glob("*.yaml"))


def test_there_is_one_file_per_search():
    assert FILES == sorted(SEARCHES)


@pytest.mark.parametrize("name", FILES)
def test_decode_file_sets_the_search_it_is_named_after(name):
    composed = resolve(compose_config([f"decode={name}"])).decode
    assert composed.search == name
    # `research.evaluate run_dir=... decode=NAME` reads the file on its own (research/run_dir.py).
    node = OmegaConf.load(REPO / "conf" / "decode" / f"{name}.yaml")
    alone = build_dataclass(DecodeConfig, OmegaConf.to_container(node), prefix="decode")
    assert alone == composed


def test_the_shipped_searches_keep_their_settings():
    """decode=greedy and decode=beam decode as they did when beam_size and sample chose the search."""
    greedy, beam = (resolve(compose_config([f"decode={n}"])).decode for n in ("greedy", "beam"))
    assert (greedy.beam_size, greedy.n_best, greedy.length_penalty) == (1, 1, 0.6)
    assert (beam.beam_size, beam.n_best, beam.length_penalty) == (5, 1, 0.6)
    for d in (greedy, beam):
        assert (d.max_len_a, d.max_len_b, d.temperature, d.top_k, d.top_p, d.seed) == (1.5, 10, 1.0, 0, 1.0, 0)


def test_beam_search_of_width_one_is_allowed():
    """search=beam with beam_size=1 is a valid beam search (equal to greedy with length_penalty 0, see beam.py)."""
    assert DecodeConfig(search="beam", beam_size=1).search == "beam"


@pytest.mark.parametrize("search,key,value", [
    ("greedy", "beam_size", 5), ("sample", "beam_size", 2),
    ("greedy", "temperature", 0.5), ("beam", "top_k", 40), ("beam", "top_p", 0.9),
])
def test_a_value_of_another_search_is_refused_naming_the_key(search, key, value):
    extra = {"beam_size": 5} if search == "beam" else {}
    with pytest.raises(ConfigError) as err:
        DecodeConfig(search=search, **extra, **{key: value})
    assert str(err.value).startswith(f"{key}: {value} applies to search=")
    assert f"but search={search}" in str(err.value)


def test_replace_revalidates():
    """Code that switches the search with dataclasses.replace must reset the other search's values."""
    beam = DecodeConfig(search="beam", beam_size=4)
    with pytest.raises(ConfigError, match="beam_size"):
        dataclasses.replace(beam, search="greedy")
    assert dataclasses.replace(beam, search="greedy", beam_size=1).search == "greedy"
