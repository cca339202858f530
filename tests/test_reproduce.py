"""manifest.json and `python -m research.reproduce`: same config and seed, same metrics; another seed, others."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

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


@pytest.mark.slow  # minutes on 2 cores: `make test-slow` (measured in the 2026-12-03 durations)
def test_same_seed_same_metrics_other_seed_different(tmp_path):
    run = tmp_path / "run"
    train(run, tmp_path)
    m = json.loads((run / "manifest.json").read_text())
    assert {"config", "hydra_config", "git", "versions", "devices", "hardware", "data", "tokenizer", "seeds", "overrides"} <= set(m)
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


def _with_hardware(run, **changes):
    record = {"cpu": "Test CPU 1", "cpu_flags": "avx2 fma sse4_2", "cores": 2, "accelerator": None, **changes}
    (run / "manifest.json").write_text(json.dumps({"hardware": record}))
    return run


def test_other_hardware_is_said_up_front_and_compared_within_the_stated_tolerance(tmp_path, capsys):
    a = _with_hardware(fake_run(tmp_path / "a", 2.5, 10.0))
    near = fake_run(tmp_path / "near", 2.5 * 1.01, 10.0 * 0.99)  # 1% off: inside 5%
    far = fake_run(tmp_path / "far", 2.5 * 1.10, 10.0)           # 10% off: outside
    for run in (near, far):
        _with_hardware(run, cpu="Test CPU 2", cpu_flags="avx2 avx512f fma sse4_2")
    assert reproduce.main([str(a), "--against", str(near)]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("hardware differs from the original run (cpu: Test CPU 1 -> Test CPU 2; cpu_flags: 0 only before (), 1 only now (avx512f))")
    assert f"within rtol={reproduce.CROSS_HARDWARE_RTOL:g}, atol=0" in first
    assert reproduce.main([str(a), "--against", str(far)]) == 1
    assert reproduce.main([str(a), "--against", str(near), "--rtol", "0"]) == 1  # a given tolerance wins
    assert "(as given)" in capsys.readouterr().out


def test_the_same_hardware_still_demands_equality(tmp_path, capsys):
    a = _with_hardware(fake_run(tmp_path / "a", 2.5, 10.0))
    b = _with_hardware(fake_run(tmp_path / "b", 2.5 * (1 + 1e-6), 10.0))
    assert reproduce.main([str(a), "--against", str(b)]) == 1
    assert capsys.readouterr().out.splitlines()[0] == "same hardware as the original run (Test CPU 1): metrics must match exactly"


def test_the_manifest_records_this_machine():
    import jax

    from research.training import hardware

    here = hardware.describe(jax.devices())
    assert here["cpu"] != "unknown" and here["cores"] >= 1 and here["accelerator"] is None  # the suite runs on CPU
    assert here["cpu_flags"] == " ".join(sorted(here["cpu_flags"].split()))
    assert hardware.differences(here, dict(here)) == []
    assert hardware.differences(here, {**here, "cores": here["cores"] + 1}) == [f"cores: {here['cores']} -> {here['cores'] + 1}"]


@pytest.mark.parametrize("name", ["encoder.dropout=0.0,optim.learning_rate=0.003,trainer.seed=0-2026-12-07_03-40-29",
                                  "it's=1,b=2", 'say "x=1"'])
def test_the_rerun_folder_reaches_hydra_whole_whatever_its_name(tmp_path, name):
    """A sweep's run folders are named after their overrides, and the default re-run folder after the run: Hydra's
    own override parser must read the command's `hydra.run.dir` back as that one path."""
    from hydra.core.override_parser.overrides_parser import OverridesParser  # noqa: PLC0415

    cmd = reproduce.rerun_command(tmp_path / "run", tmp_path / name, ["trainer.seed=1"])
    overrides = OverridesParser.create().parse_overrides(cmd[cmd.index("--config-name") + 2:])
    assert [(o.key_or_group, o.value()) for o in overrides] == [("hydra.run.dir", str((tmp_path / name).resolve())),
                                                                 ("trainer.seed", 1)]


def test_a_rerun_folder_hydra_cannot_be_given_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="both quote characters"):
        reproduce.rerun_command(tmp_path / "run", tmp_path / "it's \"odd\"", [])
