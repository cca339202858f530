"""manifest.json and `python -m research.reproduce`: same config and seed, same metrics; another seed, others."""
from __future__ import annotations

import json
import subprocess
import sys

from research import reproduce
from research.config import REPO
from tests.conftest import tiny_overrides
from tests.helpers.runs import SHORT, fake_run


def train(run_dir, tmp_path, *overrides):
    cmd = [sys.executable, "-m", "research.train", *tiny_overrides("cnn", "transformer"), *SHORT,
           f"tokenizer.cache_dir={tmp_path}/spm", f"hydra.run.dir={run_dir}", *overrides]
    subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, check=True)


def test_compare_is_exact_and_ignores_timings(tmp_path):
    a = fake_run(tmp_path / "a", 2.5, 10.0)
    b = fake_run(tmp_path / "b", 2.5, 10.0, seed=1)  # other timings only
    rows = reproduce.compare(a, b)
    assert all(ok for *_, ok in rows) and not any("tokens_per_s" in k or "_s" == k[-2:] for k, *_ in rows)
    c = fake_run(tmp_path / "c", 2.5 + 1e-12, 10.0)
    bad = [k for k, *_, ok in reproduce.compare(a, c) if not ok]
    assert bad == ["train/loss@2", "validation/loss@4", "final/loss"]
    assert all(ok for *_, ok in reproduce.compare(a, c, rtol=1e-9))
    assert reproduce.main([str(a), "--against", str(b)]) == 0
    assert reproduce.main([str(a), "--against", str(c)]) == 1
    assert reproduce.main([str(tmp_path / "missing")]) == 2


def test_same_seed_same_metrics_other_seed_different(tmp_path):
    run = tmp_path / "run"
    train(run, tmp_path)
    m = json.loads((run / "manifest.json").read_text())
    assert {"config", "hydra_config", "git", "versions", "devices", "data", "tokenizer", "seeds", "overrides"} <= set(m)
    assert m["seeds"]["trainer"] == 0 and m["config"]["trainer"]["seed"] == 0
    assert m["devices"]["count"] >= 1 and m["versions"]["jax"] and len(m["data"]["fingerprint"]) == 16
    assert len(m["tokenizer"]["fingerprint"]) == 16 and {"commit", "dirty"} <= set(m["git"])

    cmd = [sys.executable, "-m", "research.reproduce", str(run)]
    same = subprocess.run([*cmd, "--out", str(tmp_path / "again")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "data fingerprint       same" in same.stdout and "tokenizer fingerprint  same" in same.stdout
    result = json.loads((tmp_path / "again" / "reproduce.json").read_text())
    assert result["match"] and any(r["metric"] == "final/bleu" for r in result["metrics"])

    other = subprocess.run([*cmd, "--out", str(tmp_path / "seed1"), "trainer.seed=1"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert other.returncode == 1, other.stdout + other.stderr
    assert "final/loss" in json.loads((tmp_path / "seed1" / "reproduce.json").read_text())["mismatches"]
    assert "trainer.seed: 0 -> 1" in other.stdout
