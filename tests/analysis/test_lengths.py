"""Accuracy by target length across runs, and the report's by-length section on crafted sequence-task runs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from research import report
from research.analysis import lengths


def row(arch, seed, test=None, validation=None, boundary=4):
    r = {"architecture": arch, "seed": seed, "train_target_len_max": boundary}
    r.update({f"test_sequence_accuracy_len_{k}": v for k, v in (test or {}).items()})
    r.update({f"validation_sequence_accuracy_len_{k}": v for k, v in (validation or {}).items()})
    return r


def test_means_and_spreads_per_bucket_over_seeds():
    rows = [row("a", 0, {"1_4": 100.0, "5_8": 20.0}), row("a", 1, {"1_4": 90.0, "5_8": 40.0}),
            row("b", 0, {"1_4": 80.0}, boundary=3)]
    got = lengths.by_length(rows)
    assert got["split"] == "test" and got["buckets"] == [(1, 4), (5, 8)] and got["boundary"] == 4
    assert got["mean"] == {"a": [95.0, 30.0], "b": [80.0, None]}
    assert got["std"]["a"] == pytest.approx([7.0710678, 14.1421356]) and got["std"]["b"] == [None, None]


def test_validation_buckets_when_no_run_has_test_ones_and_none_for_other_tasks():
    assert lengths.by_length([row("a", 0, validation={"1_2": 50.0})])["split"] == "validation"
    assert lengths.by_length([{"architecture": "a", "test_bleu": 3.0}]) is None


def sequence_run(path: Path, enc: str, seed: int, hyps: list[str], refs: list[str]) -> None:
    (path / ".hydra").mkdir(parents=True)
    (path / ".hydra" / "config.yaml").write_text("{}\n")
    exact = [h == r for h, r in zip(hyps, refs)]
    short = [e for e, r in zip(exact, refs) if len(r.split()) <= 2]
    long = [e for e, r in zip(exact, refs) if len(r.split()) > 2]
    scores = {"sequence_accuracy": 100 * sum(exact) / len(exact), "sequence_accuracy_len_1_2": 100 * sum(short) / len(short),
              "sequence_accuracy_len_3_4": 100 * sum(long) / len(long)}
    (path / "metrics.jsonl").write_text(json.dumps({"step": 10, "split": "validation", "loss": 1.0, **scores,
                                                    "flops": 1e9, "train_seconds": 1.0}) + "\n")
    (path / "eval_test.json").write_text(json.dumps({"split": "test_longer", "examples": len(refs), **scores}))
    (path / "hyps_test.txt").write_text("".join(h + "\n" for h in hyps))
    summary = {"encoder": enc, "decoder": "rnn", "seed": seed, "params": 10, "steps": 10, "wall_s": 1.0,
               "validation": {"loss": 1.0, **scores}, "metric": "sequence_accuracy", "train_target_len_max": 2}
    (path / "summary.json").write_text(json.dumps(summary))


def test_report_decides_a_sequence_sweep_and_tabulates_accuracy_by_length(tmp_path):
    refs = ["a", "b a", "a b c", "c b a d"] * 10
    good = list(refs)
    bad = ["a", "b a", "a b", "c b a"] * 10  # right on short targets, wrong on every long one
    for seed in (0, 1):
        sequence_run(tmp_path / f"{seed}", "transformer", seed, good, refs)
        sequence_run(tmp_path / f"{2 + seed}", "rnn", seed, bad, refs)
    result = report.report(tmp_path, references=lambda run: refs)
    md = (tmp_path / "report.md").read_text()
    assert result["verdict"]["best"] == "transformer+rnn"
    assert result["verdict"]["p_columns"] == ["sequence_accuracy_bootstrap"]
    assert "per-example exact match" in md
    assert "| architecture | 1-2 | 3-4 * |" in md
    assert "| transformer+rnn | 100.0 | 100.0 |" in md
    assert "| rnn+rnn | 100.0 | 0.0 |" in md
    assert (tmp_path / "accuracy_by_length.png").stat().st_size > 0
    rnn = next(g for g in result["groups"] if g["architecture"] == "rnn+rnn")
    assert rnn["p_sequence_accuracy_bootstrap"] < 0.05 and not rnn["in_best_group"]
