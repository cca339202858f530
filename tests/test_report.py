"""`python -m research.report`: a sweep's runs in one table, per-architecture statistics, plots and HParams."""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import re
import shutil
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
from tests.helpers.holm import step_down
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
        # the third job was first started by a resumed launch, so Hydra recorded trainer.resume=True for it
        _hydra(run, [f"encoder={enc}", f"trainer.seed={seed}", *(["trainer.resume=True"] if i == 2 else [])])
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
    assert set(groups) == {"rnn+rnn", "cnn+rnn"}  # trainer.resume names no architecture
    assert groups["cnn+rnn"]["validation_bleu_std"] == ""  # one seed: no spread
    assert float(groups["rnn+rnn"]["test_bleu_mean"]) == pytest.approx(100.0) and groups["rnn+rnn"]["test_bleu_std"] == ""
    md = (tmp_path / "report" / "report.md").read_text()
    assert "| rnn+rnn | 2 | 10 | 11.00 ± 1.41 | 2.000 ± 0.000 | 100.00 |" in md
    assert "Skipped 1 incomplete runs: 3" in md
    # regenerated into the same folder: each run's HParams session once, not once per report
    sessions = lambda: sorted(str(p.relative_to(tmp_path / "report" / "tb")) for p in
                              (tmp_path / "report" / "tb").rglob("events.out.tfevents.*"))
    first = sessions()
    report.report(tmp_path, tmp_path / "report")
    assert len(sessions()) == len(first) == 4  # the experiment file and one per finished run
    (tmp_path / "report" / "tb" / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit, match="holds files a report does not write"):
        report.report(tmp_path, tmp_path / "report")
    assert (tmp_path / "report" / "tb" / "notes.txt").read_text() == "mine"


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
    for r in rows:  # the FLOPs column is what the run's own training log counted at its last step
        logged = [json.loads(line) for line in (sweep / r["run"] / "metrics.jsonl").read_text().splitlines()]
        assert float(r["train_flops"]) == [x for x in logged if x["split"] == "train"][-1]["flops"] > 0
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
    line = report.environment(run)
    assert re.match(r"code abc; Test CPU, 2 cores \(machine [0-9a-f]{8}\); 1 x cpu \(cpu\); ", line), line
    del manifest["hardware"]
    (run / "manifest.json").write_text(json.dumps(manifest))
    assert "; hardware not recorded; " in report.environment(run)


def test_report_names_the_code_versions_its_runs_were_computed_by(tmp_path):
    commits = [("a" * 40, False), ("a" * 40, False), ("b" * 40, True), None]  # the last run has no manifest
    for i, found in enumerate(commits):
        run = fake_run(tmp_path / str(i), 2.0, 10.0 + i, i)
        _hydra(run, [f"trainer.seed={i}"])
        if found:
            (run / "manifest.json").write_text(json.dumps({"git": {"commit": found[0], "dirty": found[1]}}))
    report.report(tmp_path, tmp_path / "report")
    rows = list(csv.DictReader((tmp_path / "report" / "report.csv").open()))
    assert [r["code"] for r in rows] == ["a" * 40, "a" * 40, "b" * 40 + "+dirty", ""]
    md = (tmp_path / "report" / "report.md").read_text()
    assert ("**Computed at 2 commits**: where the code they ran differs between them (`git diff A B -- research`), runs "
            "may differ by more than their training: aaaaaaa: 2 runs; bbbbbbb+dirty: 1 run.") in md
    for run in ("2", "3"):  # one version and a run without a record: nothing to say
        shutil.rmtree(tmp_path / run)
    report.report(tmp_path, tmp_path / "report")
    assert "commits**" not in (tmp_path / "report" / "report.md").read_text()


def test_runs_from_hosts_with_one_model_name_but_other_flags_count_as_two_machines(tmp_path):
    from research import report

    flags = ["avx2 fma sse4_2", "sse4_2 avx2 fma", "avx2 avx512f fma sse4_2", None]  # one set twice, another, none
    runs = []
    for i, f in enumerate(flags):
        runs.append(tmp_path / f"run{i}")
        runs[-1].mkdir()
        hw = {"cpu": "AMD EPYC", "cpu_flags": f, "cores": 2, "accelerator": None} if f else None
        (runs[-1] / "manifest.json").write_text(json.dumps({"hardware": hw} if hw else {}))
    counts = report.machines(runs)
    assert sorted(counts.values()) == [1, 2]  # the unrecorded fourth run is not counted
    same = report.machines(runs[:2])
    assert len(same) == 1 and list(same.values()) == [2]
    assert all(re.fullmatch(r"AMD EPYC \([0-9a-f]{8}\)", k) for k in counts)


REFS = ["the cat sat on the mat", "a quick brown fox jumps", "package for the gnome desktop",
        "library for parsing json files", "tools to convert images", "python bindings for the library"] * 4
# Their sources (what the breakdown of repetition by source reads): lengths 2 to 7 words, one in three repeats a word.
SRCS = ["die katze", "ein schneller fuchs fuchs", "paket für den gnome desktop", "bibliothek bibliothek für json",
        "werkzeuge zum umwandeln von bildern bildern", "python anbindungen für die bibliothek und mehr"] * 4


def _hyps(quality: int, seed: int) -> list[str]:
    """Hypotheses that keep the first `quality` words of each reference (and one seed-dependent slip)."""
    out = [" ".join(r.split()[:quality]) for r in REFS]
    out[seed] = "wrong words entirely"
    return out


def _decided_run(path, enc: str, seed: int, quality: int, flops_per_step: float):
    run = fake_run(path, 2.0, 0.0, seed)
    s = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**s, "encoder": enc}))
    _hydra(run, [f"encoder={enc}", f"trainer.seed={seed}"])
    curve = [{"step": k, "split": "validation", "loss": 3.0 - k, "bleu": 5.0 * k * quality,
              "flops": k * flops_per_step, "train_seconds": 10.0 * k} for k in (1, 2)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(c) + "\n" for c in curve))
    hyps = _hyps(quality, seed)
    _evaluated(run, 1.0, hyps, REFS)
    return hyps


def test_the_report_decides_with_intervals_paired_tests_and_a_compute_frontier(tmp_path):
    from research.analysis import confidence, significance

    hyps = {}
    for i, (enc, quality, cost) in enumerate([("rnn", 3, 2.0), ("cnn", 5, 1.0), ("transformer", 5, 3.0)]):
        for seed in range(3):
            hyps[(enc, seed)] = _decided_run(tmp_path / f"{enc}{seed}", enc, seed, quality, cost)
    out = report.report(tmp_path, tmp_path / "report", references=lambda run: REFS, sources=lambda run: SRCS)
    v = out["verdict"]
    groups = {g["architecture"]: g for g in out["groups"]}
    assert v["column"] == "test_bleu" and v["seeds"] == [0, 1, 2]
    # the interval of each architecture is the t interval of its three test BLEUs
    scores = {a: [r["test_bleu"] for r in out["rows"] if r["architecture"] == a] for a in groups}
    for a, g in groups.items():
        i = confidence.t_interval(scores[a])
        assert (g["ci_low"], g["ci_high"]) == pytest.approx((i.low, i.high))
    best = v["best"]
    assert best in ("cnn+rnn", "transformer+rnn")  # equal quality: the same hypotheses
    joined = {a: [h for s in range(3) for h in hyps[(a.split("+")[0], s)]] for a in groups}
    want = significance.translation(joined[best], {a: h for a, h in joined.items() if a != best}, REFS * 3)
    for a in groups:
        if a != best:
            assert {k[2:]: g for k, g in groups[a].items() if k.startswith("p_")} == want[a]
    assert groups["rnn+rnn"]["in_best_group"] is False and groups["rnn+rnn"]["p_bleu_ar"] < 0.05
    other = next(a for a in ("cnn+rnn", "transformer+rnn") if a != best)
    assert groups[other]["in_best_group"] is True and groups[other]["p_bleu_ar"] == 1.0  # identical outputs
    # the Holm group: the step-down procedure over every p-value against the best, as one family
    family = {(a, k): p for a, g in groups.items() if a != best for k, p in g.items() if k.startswith("p_")}
    rejected = step_down(family, 0.05)
    assert len(family) == 8
    for a, g in groups.items():
        assert g["in_best_group_holm"] is (a == best or not any(x == a for x, _ in rejected)), a
        if a != best:
            own = [p for (x, _), p in family.items() if x == a]
            assert min(own) <= g["holm_p"] <= min(1.0, len(family) * min(own))  # between no correction and Bonferroni
    # the frontier by FLOPs: cnn is cheapest and (jointly) best; transformer costs more for the same
    assert v["compute"]["frontier"]["flops"] == ["cnn+rnn"]
    md = (tmp_path / "report" / "report.md").read_text()
    assert "## The decision" in md and "## Quality against compute" in md and "metric_vs_compute.png" in md
    assert "once all 8 in the table are adjusted as one family by Holm's step-down procedure" in md
    assert "| p, Holm | group, Holm |" in md
    assert (tmp_path / "report" / "metric_vs_compute.png").stat().st_size > 0


def test_the_report_counts_hypotheses_that_repeat_a_phrase_beside_the_references(tmp_path):
    """Translation writes text: the report gives each architecture's share of test hypotheses repeating a word
    3-gram, mean and std over seeds, by a hand count of the hypotheses below."""
    looping = lambda seed: ["the cat sat the cat sat", *REFS[1:]] if seed == 0 else \
        ["the cat sat the cat sat", "a quick brown a quick brown", *REFS[2:]]
    for seed in range(2):  # cnn: the references (none repeats); rnn: 1 and 2 of 24 hypotheses loop
        for enc, hyps in (("cnn", list(REFS)), ("rnn", looping(seed))):
            _decided_run(tmp_path / f"{enc}{seed}", enc, seed, 5, 1.0)
            _evaluated(tmp_path / f"{enc}{seed}", 1.0, hyps, REFS)
    out = report.report(tmp_path, tmp_path / "report", references=lambda run: REFS, sources=lambda run: SRCS)
    found = out["repetition"]
    assert found["n"] == 3 and found["references"] == 0.0
    assert found["mean"] == pytest.approx({"cnn+rnn": 0.0, "rnn+rnn": (1 / 24 + 2 / 24) / 2})
    assert found["std"]["rnn+rnn"] == pytest.approx(2 ** 0.5 * (1 / 24) / 2) and found["std"]["cnn+rnn"] == 0.0
    md = (tmp_path / "report" / "report.md").read_text()
    assert "## Repetition" in md and "the references: 0.0%" in md
    assert md.index("| rnn+rnn | 6.2 ± 2.9 |") < md.index("| cnn+rnn | 0.0 ± 0.0 |")  # most first
    # By source (SRCS: lengths 2, 4, 5, 4, 6, 7, so thirds at 4 and 6 words; words repeat in sources 1, 3 and 4 of
    # each six). The looping hypotheses are example 0 (seed 0) and examples 0 and 1 (seed 1): source 0 has 2 words
    # and repeats none, source 1 has 4 and repeats "fuchs".
    src = found["by_source"]
    assert src["groups"] == {"source repeats a word": 12, "source repeats none": 12, "source of at most 4 words": 12,
                             "source of 5 to 6 words": 8, "source of more than 6 words": 4}
    assert src["mean"]["rnn+rnn"] == pytest.approx({
        "source repeats a word": (0 + 1 / 12) / 2, "source repeats none": 1 / 12, "source of at most 4 words": (1 / 12 + 2 / 12) / 2,
        "source of 5 to 6 words": 0.0, "source of more than 6 words": 0.0})
    assert set(src["references"].values()) == {0.0} and set(src["mean"]["cnn+rnn"].values()) == {0.0}
    assert ("| architecture | source repeats a word (12) | source repeats none (12) | source of at most 4 words (12) | "
            "source of 5 to 6 words (8) | source of more than 6 words (4) |") in md
    assert md.index("| references | 0.0 | 0.0 | 0.0 | 0.0 | 0.0 |") < md.index("| rnn+rnn | 4.2 | 8.3 | 12.5 | 0.0 | 0.0 |")
    with pytest.raises(ValueError, match="sources 23, references 24"):
        report.report(tmp_path, tmp_path / "report", references=lambda run: REFS, sources=lambda run: SRCS[1:])


def test_without_p_values_the_report_says_why(tmp_path):
    for seed in range(2):
        _hydra(fake_run(tmp_path / "one" / str(seed), 2.0, 5.0 + seed, seed), ["encoder=rnn", f"trainer.seed={seed}"])
    report.report(tmp_path / "one", tmp_path / "one_report")
    assert "No p-values: one architecture, so none to test against the best." in (tmp_path / "one_report" / "report.md").read_text()
    for i, enc in enumerate(["rnn", "cnn"]):  # two architectures, and no run wrote hyps_test.txt
        run = fake_run(tmp_path / "two" / str(i), 2.0, 5.0 + i, 0)
        s = json.loads((run / "summary.json").read_text())
        (run / "summary.json").write_text(json.dumps({**s, "encoder": enc}))
        _hydra(run, [f"encoder={enc}"])
    report.report(tmp_path / "two", tmp_path / "two_report")
    assert "No p-values: not every run has test hypotheses" in (tmp_path / "two_report" / "report.md").read_text()


def test_a_report_refuses_runs_of_different_tasks(tmp_path):
    for i, metric in enumerate(["bleu", "rougeL"]):
        run = fake_run(tmp_path / str(i), 2.0, 1.0, i)
        s = json.loads((run / "summary.json").read_text())
        (run / "summary.json").write_text(json.dumps({**s, "metric": metric}))
    with pytest.raises(SystemExit, match=r"1: scored by rougeL, but .*0 by bleu: runs of different tasks"):
        report.report(tmp_path, tmp_path / "report")


def test_a_language_model_report_takes_the_lowest_perplexity_as_best(tmp_path):
    """Perplexity decides lower-is-better: the best, the decision table's order, the frontier and the best at a
    budget all take the lowest. The cheapest run here is also the best, so it alone is on the frontier (read as
    higher-is-better, every architecture would be: each costs more and scores "more")."""
    import numpy as np  # noqa: PLC0415

    from research.tasks import lm  # noqa: PLC0415

    rng = np.random.default_rng(0)
    tokens = rng.integers(5, 30, size=40)
    for dec, nll, cost in [("transformer", 1.0, 1.0), ("cnn", 1.5, 2.0), ("rnn", 2.0, 3.0)]:
        for seed in range(3):
            run = fake_run(tmp_path / f"{dec}{seed}", nll, 0.0, seed)
            per_token = nll + 0.3 * rng.standard_normal(len(tokens)) + 0.01 * seed
            lines = [lm.example_line(p * t, t, t // 2) for p, t in zip(per_token, tokens)]
            (run / "hyps_test.txt").write_text("".join(l + "\n" for l in lines))
            scores = lm.score(lines)
            (run / "eval_test.json").write_text(json.dumps({**scores, "examples": len(lines), "step": 4}))
            summary = json.loads((run / "summary.json").read_text())
            (run / "summary.json").write_text(json.dumps({
                **summary, "encoder": "none", "decoder": dec, "metric": "perplexity",
                "validation": {"loss": nll, "perplexity": math.exp(nll), "samples": []}}))
            _hydra(run, [f"decoder={dec}", f"trainer.seed={seed}"])
            curve = [{"step": k, "split": "validation", "loss": nll + 1 / k, "perplexity": math.exp(nll + 1 / k),
                      "flops": k * cost, "train_seconds": 10.0 * k * cost} for k in (1, 2)]
            (run / "metrics.jsonl").write_text("".join(json.dumps(c) + "\n" for c in curve))
    out = report.report(tmp_path, tmp_path / "report", references=lambda run: ["a text"] * len(tokens))
    v = out["verdict"]
    assert (v["column"], v["best"]) == ("test_perplexity", "transformer")
    groups = {g["architecture"]: g for g in out["groups"]}
    assert groups["rnn"]["p_perplexity_bootstrap"] < 0.05 and not groups["rnn"]["in_best_group"]
    assert v["compute"]["frontier"]["flops"] == ["transformer"]
    assert [b["best"] for b in v["compute"]["best_at"]] == ["transformer"] * len(v["compute"]["best_at"])
    md = (tmp_path / "report" / "report.md").read_text()
    decision = md[md.index("## The decision"):md.index("## Quality against compute")]
    rows = [line.split("|")[1].strip() for line in decision.splitlines() if line.startswith("| ") and "runs" not in line
            and not line.startswith("| ---")]
    assert rows == ["transformer", "cnn", "rnn"]  # lowest perplexity first
    assert out["repetition"] is None and "## Repetition" not in md  # its hyps_test.txt lines are scores, not text


def test_tune_compares_each_architecture_at_its_best_validated_setting_as_a_report_of_those_runs_alone(tmp_path):
    """Validation picks rnn's 0.01 and cnn's 0.001, though test would pick otherwise for cnn: the choice must not
    read the test set. The section's decision is then the one a report of the chosen runs alone makes."""
    import shutil  # noqa: PLC0415

    # (encoder, learning rate) -> (validation BLEU, test quality in words kept)
    arms = {("rnn", "0.001"): (10.0, 2), ("rnn", "0.01"): (14.0, 4), ("cnn", "0.001"): (20.0, 3),
            ("cnn", "0.01"): (18.0, 5)}
    sweep = tmp_path / "sweep"
    for (enc, lr), (val, quality) in arms.items():
        for seed in range(3):
            run = fake_run(sweep / f"{enc}-{lr}-{seed}", 2.0, val + seed, seed)
            s = json.loads((run / "summary.json").read_text())
            (run / "summary.json").write_text(json.dumps({**s, "encoder": enc}))
            _hydra(run, [f"encoder={enc}", f"optim.learning_rate={lr}", f"trainer.seed={seed}"])
            _evaluated(run, 1.0, _hyps(quality, seed), REFS)
    out = report.report(sweep, tmp_path / "report", references=lambda run: REFS, sources=lambda run: SRCS, tune=["optim.learning_rate"])
    assert out["verdict"]["best"] == "cnn+rnn optim.learning_rate=0.01"  # the main decision is unchanged: by test
    found = out["tuned"]
    assert [(c["family"], c["chosen"]) for c in found["choice"]] == [("cnn+rnn", "cnn+rnn optim.learning_rate=0.001"),
                                                                     ("rnn+rnn", "rnn+rnn optim.learning_rate=0.01")]
    chosen = sweep.parent / "chosen"
    for enc, lr in (("cnn", "0.001"), ("rnn", "0.01")):
        for seed in range(3):
            shutil.copytree(sweep / f"{enc}-{lr}-{seed}", chosen / f"{enc}-{lr}-{seed}")
    alone = report.report(chosen, tmp_path / "alone", references=lambda run: REFS, sources=lambda run: SRCS)
    assert found["verdict"]["best"] == alone["verdict"]["best"] == "rnn+rnn optim.learning_rate=0.01"
    keys = ("architecture", "runs", "test_bleu_mean", "test_bleu_std", "ci_low", "ci_high", "p_bleu_ar", "in_best_group")
    assert [{k: g.get(k) for k in keys} for g in found["groups"]] == [{k: g.get(k) for k in keys} for g in alone["groups"]]
    assert next(g for g in found["groups"] if g["architecture"].startswith("cnn"))["p_bleu_ar"] < 0.05
    md = (tmp_path / "report" / "report.md").read_text()
    assert "## Each architecture at its best optim.learning_rate" in md
    assert "| cnn+rnn | **optim.learning_rate=0.001** 21.00 (3 runs); optim.learning_rate=0.01 19.00 (3 runs) |" in md
    assert ("so not bracketed: a better value may lie beyond it, and the comparison below holds for the values tried "
            "only. cnn+rnn (the lowest optim.learning_rate tried); rnn+rnn (the highest optim.learning_rate tried).") in md
    assert "--tune optim.learning_rate" in md  # the report command regenerates this section
    with (tmp_path / "report" / "report_by_architecture.csv").open() as f:
        by_arch = {r["architecture"]: r for r in csv.DictReader(f)}
    assert {a: (r["family"], r["chosen_on_validation"]) for a, r in by_arch.items()} == {
        "rnn+rnn optim.learning_rate=0.001": ("rnn+rnn", "False"), "rnn+rnn optim.learning_rate=0.01": ("rnn+rnn", "True"),
        "cnn+rnn optim.learning_rate=0.001": ("cnn+rnn", "True"), "cnn+rnn optim.learning_rate=0.01": ("cnn+rnn", "False")}
    with pytest.raises(SystemExit, match=r"error: .*sweep: --tune optim.lr: not an override that varies between the "
                                         r"sweep's runs; those that do: encoder, optim.learning_rate, trainer.seed"):
        report.main([str(sweep), "--out", str(tmp_path / "typo"), "--tune", "optim.lr"])
