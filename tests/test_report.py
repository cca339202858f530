"""`python -m research.report`: a sweep's runs in one table, per-architecture statistics, plots and HParams."""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import subprocess
import sys

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

from research import evaluate, report
from research.config import REPO
from research.decoding import metrics
from research.decoding.config import DecodeConfig
from research.decoding.corpus import Output
from tests.conftest import TINY
from tests.helpers.runs import SHORT, fake_run


def _hydra(run, overrides):
    (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))


def _evaluated(run, loss: float, hyps: list[str], refs: list[str]) -> None:
    """Leaves eval_test.json as `python -m research.evaluate` does: its results dict, by its own writer."""
    results = {
        "run_dir": str(run), "split": "test", "data": "ddtp_de_en_sample", "examples": len(refs),
        "checkpoint": "best", "step": 4, "loss": loss, "perplexity": math.exp(loss), "accuracy": 0.25,
        **metrics.bleu(hyps, refs), "decode": dataclasses.asdict(DecodeConfig()), "wall_s": 3.5,
    }
    evaluate.write(run, "test", results, [[Output(h, -1.0, -1.0, len(h.split()) + 1)] for h in hyps])


def test_report_of_fake_runs_with_test_metrics_and_an_incomplete_run(tmp_path, caplog):
    for i, (enc, seed, bleu) in enumerate([("rnn", 0, 10.0), ("rnn", 1, 12.0), ("cnn", 0, 20.0)]):
        run = fake_run(tmp_path / str(i), 2.0, bleu, seed)
        s = json.loads((run / "summary.json").read_text())
        (run / "summary.json").write_text(json.dumps({**s, "encoder": enc}))
        _hydra(run, [f"encoder={enc}", f"trainer.seed={seed}"])
    refs = ["the cat sat on the mat", "a dog barks at the postman"]
    _evaluated(tmp_path / "0", 1.5, refs, refs)  # every hypothesis the reference: BLEU and chrF 100
    written = json.loads((tmp_path / "0" / "eval_test.json").read_text())
    assert (written["examples"], written["step"], written["wall_s"]) == (2, 4, 3.5)  # numbers that are no scores
    (tmp_path / "3" / ".hydra").mkdir(parents=True)  # started, never finished
    (tmp_path / "3" / ".hydra" / "config.yaml").write_text("{}\n")

    out = report.report(tmp_path, tmp_path / "report")
    assert "skipping 1 incomplete runs" in caplog.text and "3" in out["skipped"]
    rows = list(csv.DictReader((tmp_path / "report" / "report.csv").open()))
    assert [r["run"] for r in rows] == ["0", "1", "2"]
    test = {k: v for k, v in rows[0].items() if k.startswith("test_")}
    assert test.keys() == {"test_loss", "test_perplexity", "test_accuracy", "test_bleu", "test_chrf"}
    expected = {"test_loss": 1.5, "test_perplexity": math.exp(1.5), "test_accuracy": 0.25, "test_bleu": 100.0, "test_chrf": 100.0}
    assert {k: float(v) for k, v in test.items()} == pytest.approx(expected, rel=1e-12)
    assert all(v == "" for k, v in rows[1].items() if k.startswith("test_"))  # no eval_test.json
    groups = {g["architecture"]: g for g in csv.DictReader((tmp_path / "report" / "report_by_architecture.csv").open())}
    assert float(groups["rnn+rnn"]["validation_bleu_mean"]) == 11.0
    assert float(groups["rnn+rnn"]["validation_bleu_std"]) == pytest.approx(2 ** 0.5)
    assert groups["cnn+rnn"]["validation_bleu_std"] == ""  # one seed: no spread
    assert float(groups["rnn+rnn"]["test_bleu_mean"]) == pytest.approx(100.0) and groups["rnn+rnn"]["test_bleu_std"] == ""
    md = (tmp_path / "report" / "report.md").read_text()
    assert "| rnn+rnn | 2 | 10 | 11.00 ± 1.41 | 2.000 ± 0.000 | 100.00 |" in md
    assert "Skipped 1 incomplete runs: 3" in md


@pytest.mark.slow  # four runs, two at a time: about a minute on an idle 2-core machine, more when it is shared
def test_joblib_2x2_multirun_report(tmp_path):
    sweep = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "research.train", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
           "encoder=rnn,transformer", "decoder=cnn,transformer", *TINY, *SHORT,
           f"tokenizer.cache_dir={tmp_path}/spm", f"hydra.sweep.dir={sweep}"]
    subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, check=True)
    out = subprocess.run([sys.executable, "-m", "research.report", str(sweep)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader((sweep / "report.csv").open()))
    assert len(rows) == 4
    assert {(r["encoder"], r["decoder"]) for r in rows} == {(e, d) for e in ("rnn", "transformer") for d in ("cnn", "transformer")}
    assert all(int(r["params"]) > 0 and float(r["validation_bleu"]) >= 0 and float(r["wall_s"]) > 0 for r in rows)
    for png in ("metric_vs_params.png", "validation_curves.png"):
        assert (sweep / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (sweep / "report.md").read_text()
    assert "encoder=rnn,transformer" in md and "## By architecture" in md
    sessions = [p for p in (sweep / "tb").iterdir() if p.is_dir()]
    assert len(sessions) == 4
    acc = EventAccumulator(str(sessions[0]))
    acc.Reload()
    assert "validation/bleu" in acc.Tags()["scalars"]
    # the HParams plugin's records: the experiment (all hyperparameters and metrics) and one session per run
    plugins = [(v.tag, v.metadata.plugin_data.plugin_name) for f in (sweep / "tb").rglob("events.out.tfevents.*")
               for e in EventFileLoader(str(f)).Load() if e.HasField("summary") for v in e.summary.value]
    assert ("_hparams_/experiment", "hparams") in plugins
    assert plugins.count(("_hparams_/session_start_info", "hparams")) == 4


def test_the_environment_line_names_the_hardware(tmp_path):
    from research import report

    run = tmp_path / "run"
    run.mkdir()
    manifest = {"git": {"commit": "abc", "dirty": False}, "devices": {"count": 1, "kind": "cpu", "platform": "cpu"},
                "versions": {"python": "3.11.7"}, "data": {"fingerprint": "f"},
                "hardware": {"cpu": "Test CPU", "cpu_flags": "avx2", "cores": 2, "accelerator": None}}
    (run / "manifest.json").write_text(json.dumps(manifest))
    assert report.environment(run).startswith("code abc; Test CPU, 2 cores; 1 x cpu (cpu); ")
    del manifest["hardware"]
    (run / "manifest.json").write_text(json.dumps(manifest))
    assert "; hardware not recorded; " in report.environment(run)
