"""The registry: names agree everywhere, unknown names and bad configs fail clearly."""
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


def test_unknown_group_option_fails_at_composition_listing_options():
    with pytest.raises(Exception, match=r"(?s)encoder/lstmx.*cnn.*rnn.*transformer"):
        compose_config(["encoder=lstmx"])


def test_duplicate_registration_raises():
    reg = Registry("widget", "research.models.encoders")

    @dataclasses.dataclass(frozen=True)
    class C:
        size: int = 1

    reg.register("a", config=C)(type("A", (nn.Module,), {}))
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("a", config=C)(type("B", (nn.Module,), {}))


def test_misspelled_key_fails_at_composition_naming_it():
    with pytest.raises(Exception, match=r"hidden_szie"):
        compose_config(["encoder=rnn", "encoder.hidden_szie=3"])
    with pytest.raises(Exception, match=r"max_stepz"):
        compose_config(["trainer.max_stepz=3"])


def test_wrong_type_fails_naming_the_key():
    with pytest.raises(Exception, match=r"(?s)num_layers.*three|three.*num_layers"):
        compose_config(["encoder=rnn", "encoder.num_layers=three"])


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["model.d_model=250", "encoder=transformer"], r"encoder\.num_heads: d_model 250 is not divisible by num_heads 4"),
        (["decoder=rnn", "decoder.attention=additive"], r"decoder\.attention: 'additive' is not one of"),
        (["encoder=rnn", "encoder.cell=relu"], r"encoder\.cell: 'relu' is not one of"),
        (["trainer.precision=fp8"], r"trainer\.precision: 'fp8' is not one of fp32, bf16"),
        (["optim.schedule=linear"], r"optim\.schedule: 'linear' is not one of"),
        (["decode.beam_size=2", "decode.n_best=3"], r"decode\.n_best: must be between 1 and beam_size"),
        (["data.tokens_per_batch=10"], r"data\.tokens_per_batch: 10 cannot hold 8 rows of 96 tokens"),
        (["data.format=parquet"], r"data\.format: 'parquet' is not one of jsonl, tsv, moses, tfds"),
    ],
)
def test_impossible_values_fail_before_compilation_naming_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        resolve(compose_config(overrides))


def test_every_pair_resolves():
    for e in ENCODERS.names():
        for d in DECODERS.names():
            run = resolve(compose_config([f"encoder={e}", f"decoder={d}"]))
            assert (run.encoder, run.decoder) == (e, d)
            assert dataclasses.is_dataclass(run.encoder_config) and dataclasses.is_dataclass(run.decoder_config)
