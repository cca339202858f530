"""A sweep's runs as rows, checked against hand counts and NumPy's own mean and sample deviation."""
from __future__ import annotations

import json

import numpy as np

from research.analysis import runs
from tests.helpers.runs import fake_run


def sweep(tmp_path, overrides_by_job):
    """Fake runs named by job (a number, or a name for a run outside a multirun) with the given overrides."""
    out = []
    for job, (overrides, loss, bleu, seed) in overrides_by_job.items():
        run = fake_run(tmp_path / str(job), loss, bleu, seed)
        (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
        out.append(run)
    return out


def test_runs_are_found_in_job_order_and_unfinished_ones_kept_apart(tmp_path):
    root = tmp_path / "sweep"
    sweep(root, {10: ([], 1.0, 2.0, 0), 2: ([], 1.0, 2.0, 1), "named": ([], 1.0, 2.0, 2)})
    (root / "7" / ".hydra").mkdir(parents=True)
    (root / "7" / ".hydra" / "config.yaml").write_text("{}\n")  # started, never finished
    finished, incomplete = runs.find_runs(root)
    assert [p.name for p in finished] == ["2", "10", "named"] and [p.name for p in incomplete] == ["7"]
    # `exclude` is the report's own output folder: only runs below it are skipped, not a run of that path.
    assert runs.find_runs(root, exclude=root / "10")[0] == finished
    assert runs.find_runs(tmp_path, exclude=root) == ([], [])


def test_architecture_names_drop_seeds_and_what_every_run_shares(tmp_path):
    jobs = {0: (["encoder=rnn", "decoder=rnn", "data=ddtp_de_en", "trainer.seed=0", "optim.learning_rate=0.1"], 2.0, 5.0, 0),
            1: (["encoder=rnn", "decoder=rnn", "data=ddtp_de_en", "trainer.seed=1", "optim.learning_rate=0.1"], 2.2, 6.0, 1),
            2: (["encoder=rnn", "decoder=rnn", "data=ddtp_de_en", "trainer.seed=0", "optim.learning_rate=0.3"], 1.9, 7.0, 0)}
    rows = [runs.collect(tmp_path, r) for r in sweep(tmp_path, jobs)]
    runs.architectures(rows)
    assert [r["architecture"] for r in rows] == ["rnn+rnn optim.learning_rate=0.1"] * 2 + ["rnn+rnn optim.learning_rate=0.3"]


def test_a_variant_of_a_kind_is_named_by_the_variant_and_the_plain_kind_by_its_name(tmp_path):
    budget = "+experiment/budget/params1m/encoder"
    jobs = {0: ([f"{budget}=rnn", "trainer.seed=0"], 2.0, 5.0, 0),
            1: ([f"{budget}=rnn_1x167", "trainer.seed=0"], 2.0, 5.0, 0),
            2: ([f"{budget}=cnn", "decoder=rnn_small", "trainer.seed=0"], 2.0, 5.0, 0),
            3: (["encoder=rnn", f"{budget}=transformer_big", "trainer.seed=0"], 2.0, 5.0, 0)}
    made = sweep(tmp_path, jobs)
    for run, enc in zip(made, ["rnn", "rnn", "cnn", "rnn"]):
        summary = json.loads((run / "summary.json").read_text())
        (run / "summary.json").write_text(json.dumps({**summary, "encoder": enc, "decoder": "none" if run.name != "2"
                                                      else "rnn"}))
    rows = [runs.collect(tmp_path, r) for r in made]
    runs.architectures(rows)
    # A variant names its kind first (rnn_1x167 of an rnn); a value of another kind names nothing.
    assert [r["architecture"] for r in rows] == ["rnn", "rnn_1x167", "cnn+rnn_small", "rnn"]


def test_groups_hold_the_mean_and_sample_deviation_over_seeds(tmp_path):
    jobs = {i: ([f"trainer.seed={i}"], loss, bleu, i) for i, (loss, bleu) in enumerate([(2.0, 5.0), (2.5, 6.5), (1.0, 9.0)])}
    made = sweep(tmp_path, jobs)
    (made[1] / "eval_test.json").write_text(json.dumps({"bleu": 4.0, "examples": 50, "step": 4, "wall_s": 1.5}))
    rows = [runs.collect(tmp_path, r) for r in made]
    runs.architectures(rows)
    [group] = runs.aggregate(rows)
    assert group["runs"] == 3 and group["seeds"] == "0 1 2" and group["architecture"] == "rnn+rnn"
    assert np.isclose(group["validation_loss_mean"], np.mean([2.0, 2.5, 1.0]))
    assert np.isclose(group["validation_bleu_std"], np.std([5.0, 6.5, 9.0], ddof=1))
    assert np.isclose(group["compile_s_mean"], np.mean([1.0, 2.0, 3.0]))  # fake_run: compile_s = 1 + seed
    # One run has test scores: its mean is that score, no deviation; the records beside it are not scores.
    assert group["test_bleu_mean"] == 4.0 and group["test_bleu_std"] is None
    assert "test_examples" not in rows[1] and "test_wall_s" not in rows[1]
    assert runs.columns(rows) == [*runs.FIXED, "validation_bleu", "validation_loss", "test_bleu", *runs.SPEED, "overrides",
                                  "code"]


def test_seed_and_resume_overrides_never_name_an_architecture_and_a_missing_decoder_is_left_out(tmp_path):
    jobs = {0: (["encoder=cnn", "decoder=none", "+trainer.seed=3", "trainer.resume=true"], 2.0, 5.0, 3),
            1: (["encoder=cnn", "decoder=none", "~trainer.seed", "model.d_model=64"], 2.1, 5.5, 0)}
    made = sweep(tmp_path, jobs)
    for run in made:  # a classifier: its summary names no decoder
        summary = json.loads((run / "summary.json").read_text())
        (run / "summary.json").write_text(json.dumps({**summary, "encoder": "cnn", "decoder": "none"}))
    rows = [runs.collect(tmp_path, r) for r in made]
    runs.architectures(rows)
    assert [r["architecture"] for r in rows] == ["cnn", "cnn model.d_model=64"]
    # A single run reported on its own folder is the row ".".
    assert runs.collect(made[0], made[0])["run"] == "."


def test_csv_leaves_missing_values_empty_and_private_keys_out(tmp_path):
    rows = [runs.collect(tmp_path, r) for r in sweep(tmp_path, {0: ([], 2.0, 5.0, 0)})]
    assert "_curves" in rows[0] and not any(c.startswith("_") for c in runs.columns(rows))
    rows.append({"run": "x", "params": None})
    runs.write_csv(tmp_path / "out.csv", rows, runs.columns(rows))
    header, first, second = (tmp_path / "out.csv").read_text().splitlines()
    assert header.split(",")[:3] == ["run", "encoder", "decoder"]
    assert second.split(",")[0] == "x" and set(second.split(",")[1:]) == {""}
    assert first.split(",")[0] == "0"


def test_training_flops_come_from_the_budget_record_and_are_empty_for_older_summaries(tmp_path):
    made = sweep(tmp_path, {0: ([], 2.0, 5.0, 0), 1: ([], 2.0, 5.0, 1)})
    summary = json.loads((made[0] / "summary.json").read_text())
    spent = {"tokens": 100.0, "flops": 1.25e12, "train_seconds": 3.0}
    (made[0] / "summary.json").write_text(json.dumps({**summary, "budget": {"kind": "flops", "spent": spent}}))
    rows = [runs.collect(tmp_path, r) for r in made]
    assert rows[0]["train_flops"] == 1.25e12 and rows[1]["train_flops"] is None

