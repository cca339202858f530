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


def test_each_search_is_one_yaml_and_one_module_of_its_name():
    from research.decoding import generate
    from research.decoding.config import SEARCHES

    assert sorted(p.stem for p in (REPO / "conf" / "decode").glob("*.yaml")) == sorted(SEARCHES)
    for name in SEARCHES:
        assert (REPO / "research" / "decoding" / f"{name}.py").is_file(), name
        assert compose_config([f"decode={name}"])["decode"]["search"] == name
    # The functions the dispatcher calls come from the module of the search's name.
    assert generate.sample.__module__ == "research.decoding.sample"
    assert generate.greedy.__module__ == "research.decoding.greedy"
    assert generate.beam_search.__module__ == "research.decoding.beam"


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


def test_schema_survives_cloudpickle_as_the_joblib_launcher_sends_it(tmp_path):
    """hydra/launcher=joblib ships the ConfigStore to its loky workers with cloudpickle, which copies the
    schema classes by value (make_dataclass gives them no importable module). A field whose default came from a
    default_factory then held a copy of dataclasses.MISSING, and every sweep job failed to compose model.embeddings
    (found on the first resumed sweep after model.embeddings existed). A fresh process, like a worker, must build
    the same config from the copy."""
    import json
    import subprocess
    import sys

    import cloudpickle  # what loky (joblib) pickles with
    from omegaconf import OmegaConf

    from research.config import Schema

    (tmp_path / "schema.pkl").write_bytes(cloudpickle.dumps(Schema))
    worker = (
        "import json, pickle, sys; from omegaconf import OmegaConf\n"
        "cls = pickle.loads(open(sys.argv[1], 'rb').read())\n"
        "print(json.dumps(OmegaConf.to_container(OmegaConf.structured(cls.__dataclass_fields__['model'].type))))"
    )
    out = subprocess.run([sys.executable, "-c", worker, str(tmp_path / "schema.pkl")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    here = OmegaConf.to_container(OmegaConf.structured(Schema.__dataclass_fields__["model"].type))
    assert json.loads(out.stdout) == here
    assert here["embeddings"] == {"pretrained": None, "side": "both", "freeze": False}
