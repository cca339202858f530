"""A classification run end to end, as a user runs it: train with trainer.test=true, then research.evaluate."""
from __future__ import annotations

import json
import subprocess
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from research import evaluate
from research.config import REPO

RUN = [
    "data=ddtp_sections_en_sample", "encoder=cnn", "model.d_model=32", "encoder.num_layers=1", "encoder.channels=32",
    "encoder.max_len=128",  # the model's positions stop at 128, so evaluation needs no shapes beyond training's
    "tokenizer.vocab_size=400", "data.max_shapes=1", "optim.warmup_steps=1", "optim.learning_rate=0.003",
    "trainer.max_steps=6", "trainer.eval_every=3", "trainer.log_every=3", "trainer.samples=1", "trainer.test=true",
]


def test_classification_trains_tests_and_evaluates_with_its_baseline_and_confusion_images(tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "research.train", *RUN, f"tokenizer.cache_dir={tmp_path}/spm",
           f"data.tfds_dir={tmp_path}/tfds", f"hydra.run.dir={run}"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    valid = [r for r in rows if r["split"] == "validation"]
    assert [r["step"] for r in valid] == [3, 6] and all({"loss", "accuracy", "macro_f1"} <= set(r) for r in valid)
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["metric"], summary["encoder"], summary["decoder"]) == ("accuracy", "cnn", "none")
    assert {"accuracy", "macro_f1", "baseline_tfidf_accuracy", "baseline_tfidf_macro_f1"} <= set(summary["validation"])
    assert summary["best"]["select_by"] == "accuracy"
    assert set(summary["baseline"]) == {"validation", "test"}
    assert {"accuracy", "macro_f1", "baseline_tfidf_accuracy"} <= set(summary["test"])

    names = json.loads((run / "tokenizer" / "labels.json").read_text())["labels"]
    assert len(names) == 44 and names == sorted(names)
    hyps = (run / "hyps_test.txt").read_text().splitlines()
    assert len(hyps) == 100 and set(hyps) <= set(names)
    tested = json.loads((run / "eval_test.json").read_text())
    matrix = tested["confusion_matrix"]
    assert tested["labels"] == names and len(matrix) == 44 and sum(map(sum, matrix)) == 100
    assert sum(matrix[i][i] for i in range(44)) / 100 == tested["accuracy"]
    assert tested["baseline_tfidf_accuracy"] == summary["baseline"]["test"]["baseline_tfidf_accuracy"]

    images = EventAccumulator(str(run / "tb"), size_guidance={"images": 0})
    images.Reload()
    assert [e.step for e in images.Images("validation/confusion_matrix")] == [3, 6]

    # research.evaluate on the finished run: the same predictions and numbers as trainer.test wrote.
    again = tmp_path / "again"
    assert evaluate.main([f"run_dir={run}", "split=test", f"out={again}"]) == 0
    assert (again / "hyps_test.txt").read_text().splitlines() == hyps
    scored = json.loads((again / "eval_test.json").read_text())
    for key in ("accuracy", "macro_f1", "loss", "baseline_tfidf_accuracy", "confusion_matrix", "step", "checkpoint"):
        assert scored[key] == tested[key], key
