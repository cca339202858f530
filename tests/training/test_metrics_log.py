"""The one reader of metrics.jsonl, as report and reproduce use it."""
from __future__ import annotations

import json

import pytest

from research import reproduce
from research.analysis import runs
from research.training import metrics_log
from research.training.metrics_log import MetricsLog
from tests.helpers.runs import fake_run


def _write(run, rows):
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_a_step_logged_twice_keeps_its_last_row(tmp_path):
    # a run killed after logging step 4, resumed from its step-2 checkpoint, logs 4 again
    _write(tmp_path, [{"step": 2, "split": "train", "loss": 5.0}, {"step": 2, "split": "validation", "loss": 4.5},
                      {"step": 4, "split": "train", "loss": 4.0}, {"step": 4, "split": "train", "loss": 3.9},
                      {"step": 4, "split": "validation", "loss": 3.5}])
    rows = metrics_log.read(tmp_path)
    assert [(r["split"], r["step"], r["loss"]) for r in rows] == [
        ("train", 2, 5.0), ("validation", 2, 4.5), ("train", 4, 3.9), ("validation", 4, 3.5)]
    (tmp_path / "summary.json").write_text(json.dumps({"validation": {"loss": 3.5}, "params": 10}))
    assert reproduce.metrics(tmp_path)["train/loss@4"] == 3.9


def test_a_damaged_row_names_file_and_line(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "split": "train"}\n{"step": 2\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl:2: not a metrics row"):
        metrics_log.read(tmp_path)


def test_only_the_writing_process_opens_files(tmp_path):
    follower = MetricsLog(tmp_path / "follower", enabled=False)
    follower.write(1, "train", {"loss": 1.0})
    follower.text(1, "samples", "x")
    follower.close()
    assert not (tmp_path / "follower").exists()
    writer = MetricsLog(tmp_path / "main")
    writer.write(1, "train", {"loss": 1.0})
    writer.close()
    assert metrics_log.read(tmp_path / "main") == [{"step": 1, "split": "train", "loss": 1.0}]
    assert len(list((tmp_path / "main" / "tb").iterdir())) == 1


def test_the_report_draws_the_last_row_of_a_step(tmp_path):
    run = fake_run(tmp_path / "run", loss=2.0, bleu=10.0)
    with (run / "metrics.jsonl").open("a") as f:  # step 4 validated again after a resume
        f.write(json.dumps({"step": 4, "split": "validation", "loss": 1.5, "bleu": 12.0}) + "\n")
    curve = runs.collect(tmp_path, run)["_curves"]
    assert [(c["step"], c["loss"], c["bleu"]) for c in curve] == [(4, 1.5, 12.0)]
