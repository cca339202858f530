"""The registry: names agree everywhere, unknown names and duplicates fail clearly.

Bad configs (unknown keys and options, wrong types, impossible values) are
tests/test_config_validation.py's.
"""
from __future__ import annotations

import dataclasses

import pytest
from flax import linen as nn

from research.config import REPO, resolve
from research.models.decoders import DECODERS
from research.models.encoders import ENCODERS
from research.registry import ConfigError, Registry
from tests.conftest import compose_config


@pytest.mark.parametrize("registry,group", [(ENCODERS, "encoder"), (DECODERS, "decoder")])
def test_registry_name_is_file_stem_is_yaml_stem(registry, group):
    yaml = sorted(p.stem for p in (REPO / "conf" / group).glob("*.yaml"))
    code = sorted(p.stem for p in (REPO / "research" / "models" / f"{group}s").glob("*.py") if not p.stem.startswith("_"))
    assert registry.names() == yaml == code == ["cnn", "rnn", "transformer"]
    for name in registry.names():
        assert registry.get(name).component.__module__ == f"research.models.{group}s.{name}"
        assert compose_config([f"{group}={name}"])[group]["name"] == name


def test_unknown_name_lists_registered_names():
    with pytest.raises(ConfigError, match=r"unknown encoder 'lstmx'; registered encoders: cnn, rnn, transformer"):
        ENCODERS.get("lstmx")


def test_duplicate_registration_raises():
    reg = Registry("widget", "research.models.encoders")

    @dataclasses.dataclass(frozen=True)
    class C:
        size: int = 1

    reg.register("a", config=C)(type("A", (nn.Module,), {}))
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("a", config=C)(type("B", (nn.Module,), {}))


def test_every_pair_resolves():
    for e in ENCODERS.names():
        for d in DECODERS.names():
            run = resolve(compose_config([f"encoder={e}", f"decoder={d}"]))
            assert (run.encoder, run.decoder) == (e, d)
            assert dataclasses.is_dataclass(run.encoder_config) and dataclasses.is_dataclass(run.decoder_config)
