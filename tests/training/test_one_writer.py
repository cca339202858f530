"""A two-process run of the real train command: every run file has one writer, process 0.

Two processes on 127.0.0.1 (one CPU device each, gloo collectives) train one
run into one directory, preparing the corpus and the tokenizer at the same
moment. Files the other process also wrote would show up as rows logged
twice, a second TensorBoard events file or a log line written twice.
"""
from __future__ import annotations

import json
import os
import sys

import pytest

from research.training import checkpoint
from tests.conftest import tiny_overrides
from tests.helpers.processes import free_port, run_together


@pytest.mark.slow  # two processes of the real app: about 95 s, the longest test; `make test-slow`
def test_two_processes_write_each_file_once(tmp_path):
    run = tmp_path / "run"
    address = f"127.0.0.1:{free_port()}"
    args = [*tiny_overrides("transformer", "transformer"), "trainer.max_steps=4", "trainer.eval_every=2",
            "trainer.log_every=2", "trainer.eval_examples=4", "trainer.samples=1", "data.max_train_examples=200",
            "data.max_shapes=2", f"tokenizer.cache_dir={tmp_path}/spm", f"data.tfds_dir={tmp_path}/tfds",
            "mesh.distributed=on", f"mesh.coordinator_address={address}", "mesh.num_processes=2",
            f"hydra.run.dir={run}"]
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    done = run_together([[sys.executable, "-m", "research.train", *args, f"mesh.process_id={i}"] for i in range(2)],
                        tmp_path, env, timeout=300)
    for status, _, err in done:
        assert status == 0, err.read_text()[-3000:]
    consoles = [out.read_text() + err.read_text() for _, out, err in done]

    rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(r["split"], r["step"]) for r in rows] == [("train", 2), ("validation", 2), ("train", 4), ("validation", 4)]
    assert len(list((run / "tb").glob("events.out.tfevents.*"))) == 1
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["devices"]["processes"] == 2 and manifest["devices"]["count"] == 2
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 4 and summary["validation"]["loss"] == rows[-1]["loss"]
    assert sorted(p.name for p in (run / "tokenizer").iterdir()) == ["joint.model"]
    meta = checkpoint.read_meta(run / "checkpoints" / "last" / "4")
    assert meta["step"] == 4 and meta["validation"]["loss"] == rows[-1]["loss"]
    # Hydra's job log: process 1 detached from it, so each validation line is there once
    job_log = (run / "train.log").read_text()
    assert job_log.count("validation @4: loss") == 1 and job_log.count("validation @2: loss") == 1
    # both processes ran every validation (collective), but only process 0 wrote it
    assert all(text.count("validation @4: loss") == 1 for text in consoles)
