"""`manifest.json`: what a run needs to be reproduced, written when it starts.

Holds the resolved config, the code version (git commit, dirty or not), the
Python and key package versions, the devices, fingerprints of the training
data and of the tokenizer, the seeds, the budget (and whether it can be
reproduced bit for bit: not a seconds budget) and the command line. `research.reproduce`
re-runs a finished run and checks its metrics against the original.
"""
from __future__ import annotations

import dataclasses
import json
import platform
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import jax
from omegaconf import OmegaConf

from research.config import REPO
from research.training import budget, hardware

NAME = "manifest.json"

# The distributions whose versions can change a run's numbers.
PACKAGES = (
    "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "grain", "numpy", "tensorflow-datasets",
    "array_record", "sentencepiece", "sacrebleu", "rouge-score", "hydra-core", "omegaconf", "tensorboardX",
    "scikit-learn",  # classification metrics and baseline
)


def git_state(repo: Path = REPO) -> dict:
    """{"commit": sha or None, "dirty": bool or None}; read-only git calls, None outside a checkout."""
    def run(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout if out.returncode == 0 else None

    commit = run("rev-parse", "HEAD")
    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit.strip() if commit else None, "dirty": bool(status.strip()) if status is not None else None}


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def devices() -> dict:
    devs = jax.devices()
    return {"platform": devs[0].platform, "kind": devs[0].device_kind, "count": len(devs),
            "processes": jax.process_count(), "host": socket.gethostname()}


def hydra_config(run_dir: Path) -> dict | None:
    """The composed Hydra config of the run, interpolations resolved, if Hydra wrote one."""
    path = Path(run_dir) / ".hydra" / "config.yaml"
    if not path.exists():
        return None
    try:
        return OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except Exception:  # an interpolation that only resolves inside Hydra (${hydra:...})
        return OmegaConf.to_container(OmegaConf.load(path), resolve=False)


def _yaml_list(path: Path) -> list:
    return list(OmegaConf.to_container(OmegaConf.load(path)))


def build(cfg: Any, data_fingerprint: str, tokenizer_fingerprint: str, run_dir: Path, **extra) -> dict:
    """The manifest as a dict. `cfg` is the run's RunConfig (frozen dataclasses)."""
    run_dir = Path(run_dir)
    overrides = run_dir / ".hydra" / "overrides.yaml"
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": [sys.executable, *sys.argv],
        "overrides": _yaml_list(overrides) if overrides.exists() else None,
        "config": dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else cfg,
        "hydra_config": hydra_config(run_dir),
        "git": git_state(),
        "versions": versions(),
        "devices": devices(),
        "hardware": hardware.describe(jax.devices()),
        "data": {"name": cfg.data.name, "fingerprint": data_fingerprint},
        "tokenizer": {"fingerprint": tokenizer_fingerprint},
        "seeds": {"trainer": cfg.trainer.seed, "decode": cfg.decode.seed},
        "budget": budget.manifest_entry(cfg.trainer),  # `reproducible`: false for seconds budgets
        **extra,
    }


def write(run_dir: Path, cfg: Any, corpus: Any, **extra) -> dict:
    """Writes `run_dir/manifest.json` for a run about to train on `corpus` (loop.Corpus)."""
    m = build(cfg, corpus.fingerprint, corpus.tokenizer.fingerprint(), run_dir, **extra)
    path = Path(run_dir) / NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(m, indent=2, default=str))
    return m


def read(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / NAME).read_text())
