"""Shared fixtures: the real Hydra config, composed and shrunk; real sentence pairs."""
from __future__ import annotations

import os
import shutil
import tempfile

# Before anything imports JAX (research.config does, through the models): JAX reads
# JAX_PLATFORMS once, when it is imported, so a value set later is ignored. The suite runs on
# CPU, where its tolerances were measured and where the sharding tests fake devices
# (tests/test_layout.py checks the platform JAX ended up with).
os.environ["JAX_PLATFORMS"] = "cpu"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # XLA's C++ start-up lines; export another level to see them
# One persistent compilation cache for the whole test run, shared by both xdist workers and
# inherited by every `python -m research.train` subprocess: the suite compiles the same tiny
# models dozens of times (a tiny run took 30 s cold and 14 s warm, with bit-identical metrics).
# A cached executable is the program XLA compiled for the same HLO, flags and versions.
# The first pytest process makes the folder (xdist workers inherit its environment) and removes it.
_OWN_CACHE = None
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _OWN_CACHE = os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="research-tests-jax-cache-")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402

from research.config import REPO, register_schemas, resolve  # noqa: E402

register_schemas()

SAMPLE = REPO / "research" / "data" / "samples" / "ddtp_de_en"
SHARED = REPO.parent / "shared" / "data"

# Small enough to compile and train in seconds on a 2-core CPU, same code paths as a real run.
TINY = [
    "model.d_model=64",
    "encoder.num_layers=2", "decoder.num_layers=2",
    "tokenizer.vocab_size=800",
]
TINY_BY_KIND = {
    "transformer": ["d_ff=128", "num_heads=4"],
    "rnn": ["hidden_size=64"],
    "cnn": ["channels=64"],
}
# The three pairs that use each kind once as encoder and once as decoder come first, so that
# `tests.helpers.marks.slow_after(k, PAIRS)` keeps the first k of them in `make test` and leaves the rest to test-slow.
EACH_KIND = [("rnn", "cnn"), ("cnn", "transformer"), ("transformer", "rnn")]
PAIRS = EACH_KIND + [(e, d) for e in ("rnn", "cnn", "transformer") for d in ("rnn", "cnn", "transformer")
                     if (e, d) not in EACH_KIND]


def compose_config(overrides=(), experiment=None):
    """The composed DictConfig, as `python -m research.train` would see it."""
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        extra = [f"+experiment={experiment}"] if experiment else []
        return compose(config_name="config", overrides=extra + list(overrides))


def tiny_overrides(encoder: str, decoder: str, *extra: str) -> list[str]:
    out = [f"encoder={encoder}", f"decoder={decoder}", *TINY]
    out += [f"encoder.{o}" for o in TINY_BY_KIND[encoder]]
    out += [f"decoder.{o}" for o in TINY_BY_KIND[decoder]]
    return out + list(extra)


def tiny_run_config(encoder: str, decoder: str, tmp_path: Path, *extra: str):
    return resolve(compose_config(tiny_overrides(encoder, decoder, f"tokenizer.cache_dir={tmp_path}/spm", *extra)))


@pytest.fixture(scope="session")
def spm_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("spm")


def pytest_unconfigure(config):
    if _OWN_CACHE:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)
