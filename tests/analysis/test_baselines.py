"""Lead baselines (research/analysis/baselines.py) and their place in a summarization report."""
from __future__ import annotations

import csv
import json

from research import report
from research.analysis import baselines, budgets, significance
from research.decoding import metrics
from tests.helpers.runs import fake_run


def test_first_sentence_and_first_words_by_hand():
    doc = "Tool to convert images. It supports PNG 1.2 and e.g. JPEG!\nSecond paragraph here."
    assert baselines.first_sentence(doc) == "Tool to convert images."
    assert baselines.first_sentence("one line without a stop\nnext") == "one line without a stop"
    assert baselines.first_sentence("  \n  version 2.0 of lib.so is here ") == "version 2.0 of lib.so is here"
    assert baselines.first_sentence("") == ""
    assert baselines.first_words(doc, 3) == "Tool to convert"
    assert baselines.mean_words(["a b", "a b c d"]) == 3 and baselines.mean_words(["x"]) == 1
    leads = baselines.leads([doc], ["one two", "one two three four five"])  # mean 3.5 -> 4 (round half even)
    assert leads == {"lead-1 sentence": ["Tool to convert images."], "lead-4 words": ["Tool to convert images."]}


DOCS = ["gnome desktop panel applets. Several small programs for the panel.",
        "python bindings for the json library. Parse and write json quickly.",
        "tools to convert images between formats. Many formats are supported.",
        "a quick brown fox jumps over. The dog sleeps."] * 3
REFS = ["applets for the gnome panel", "python bindings for json", "convert images between formats",
        "brown fox jumps"] * 3
TRAIN = ["three word synopsis", "four word synopsis here"]


def _summ_run(path, enc: str, seed: int, hyps: list[str]):
    run = fake_run(path, 2.0, 0.0, seed)
    s = json.loads((run / "summary.json").read_text())
    score = metrics.rouge(hyps, REFS)["rougeL"]
    s.update(encoder=enc, metric="rougeL", validation={"loss": 2.0, "rougeL": score, "samples": []})
    (run / "summary.json").write_text(json.dumps(s))
    (run / ".hydra" / "overrides.yaml").write_text(f"- encoder={enc}\n- trainer.seed={seed}\n")
    (run / "eval_test.json").write_text(json.dumps({"split": "test", "data": "d", "examples": len(REFS), "loss": 2.0,
                                                    **metrics.rouge(hyps, REFS)}))
    (run / "hyps_test.txt").write_text("".join(h + "\n" for h in hyps))


def test_a_summarization_report_scores_and_tests_the_leads_against_the_best(tmp_path):
    good = [r for r in REFS]
    weak = [" ".join(r.split()[:2]) for r in REFS]
    for seed in range(2):
        _summ_run(tmp_path / f"cnn{seed}", "cnn", seed, good)
        _summ_run(tmp_path / f"rnn{seed}", "rnn", seed, weak)
    out = report.report(tmp_path, tmp_path / "report", references=lambda run: REFS, sources=lambda run: DOCS,
                        splits=lambda run: (DOCS, REFS, TRAIN, None))
    v = out["verdict"]
    assert v["best"] == "cnn+rnn" and set(v["baselines"]) == {"lead-1 sentence", "lead-4 words"}
    lead1 = [d.split(". ")[0] + "." for d in DOCS]
    lead4 = [" ".join(d.split()[:4]) for d in DOCS]
    for name, hyps in (("lead-1 sentence", lead1), ("lead-4 words", lead4)):
        assert v["baselines"][name]["scores"] == metrics.rouge(hyps, REFS)
        want = significance.summarization(good * 2, {name: hyps * 2}, REFS * 2)[name]
        assert v["baselines"][name]["p"] == want
    md = (tmp_path / "report" / "report.md").read_text()
    assert "### Baselines" in md and "| lead-1 sentence |" in md and "p rougeL bootstrap" in md
    rouge1 = v["baselines"]["lead-1 sentence"]["scores"]["rouge1"]
    assert rouge1 > 1 and f"| lead-1 sentence | {rouge1:.2f} |" in md  # ROUGE in points: 2 places
    # report.csv carries the leads' test scores in every row, where research.scaling reads a task's baselines
    with (tmp_path / "report" / "report.csv").open() as f:
        rows = list(csv.DictReader(f))
    for name, hyps in (("lead-1-sentence", lead1), ("lead-4-words", lead4)):
        for score, value in metrics.rouge(hyps, REFS).items():
            assert {float(r[f"test_baseline_{name}_{score}"]) for r in rows} == {value}, (name, score)
    sweep = budgets.read(tmp_path / "report" / "report.csv", flops=1e12)
    assert sweep.baselines == {"lead-1-sentence": metrics.rouge(lead1, REFS)["rougeL"],
                               "lead-4-words": metrics.rouge(lead4, REFS)["rougeL"]}


def test_a_translation_report_has_no_baselines(tmp_path):
    fake_run(tmp_path / "a", 2.0, 1.0)
    assert report.report(tmp_path, tmp_path / "report")["verdict"]["baselines"] == {}


LABELS = ["admin", "devel", "libs", "net", "admin", "devel"] * 3


def _classification_run(path, enc: str, seed: int, hyps: list[str], tfidf: list[str]):
    from sklearn.metrics import accuracy_score  # noqa: PLC0415

    run = fake_run(path, 1.0, 0.0, seed)
    s = json.loads((run / "summary.json").read_text())
    s.update(encoder=enc, decoder="none", metric="accuracy",
             validation={"loss": 1.0, "accuracy": accuracy_score(LABELS, hyps), "samples": []})
    (run / "summary.json").write_text(json.dumps(s))
    (run / ".hydra" / "overrides.yaml").write_text(f"- data=ddtp_sections_en\n- encoder={enc}\n- trainer.seed={seed}\n")
    (run / "eval_test.json").write_text(json.dumps({"split": "test", "data": "d", "examples": len(LABELS),
                                                    "loss": 1.0, "accuracy": accuracy_score(LABELS, hyps)}))
    (run / "hyps_test.txt").write_text("".join(h + "\n" for h in hyps))
    (run / "baseline.json").write_text(json.dumps({"data": "d", "fingerprint": "f", "splits": {},
                                                   "hyps": {"test": {"tfidf": tfidf}}}))


def test_a_classification_report_tests_the_best_against_the_runs_tfidf_baseline(tmp_path):
    from sklearn.metrics import accuracy_score, f1_score  # noqa: PLC0415

    good = list(LABELS)
    good[0] = "net"  # 17 of 18 right
    weak = ["admin"] * len(LABELS)  # 6 of 18
    tfidf = ["libs" if i % 2 else l for i, l in enumerate(LABELS)]  # every odd one replaced (never libs there)
    for seed in range(2):
        _classification_run(tmp_path / f"cnn{seed}", "cnn", seed, good, tfidf)
        _classification_run(tmp_path / f"rnn{seed}", "rnn", seed, weak, tfidf)
    out = report.report(tmp_path, tmp_path / "report", references=lambda run: LABELS,
                        splits=lambda run: ([""] * len(LABELS), LABELS, [], None))
    v = out["verdict"]
    assert v["best"] == "cnn"  # no "+none": a classifier has no decoder
    assert set(v["baselines"]) == {"tfidf"}
    assert v["baselines"]["tfidf"]["scores"] == {"accuracy": accuracy_score(LABELS, tfidf),
                                                 "macro_f1": f1_score(LABELS, tfidf, average="macro", zero_division=0)}
    # by hand: the best is right on 17 of 18, the baseline on the 9 even indices only
    assert round(accuracy_score(LABELS, tfidf) * 18) == 9
    p = v["baselines"]["tfidf"]["p"]["accuracy_bootstrap"]
    assert 0 < p < 0.05  # 17/18 against 9/18, the seeds joined: 36 paired examples
    md = (tmp_path / "report" / "report.md").read_text()
    assert "| tfidf |" in md and "p accuracy bootstrap" in md
    # accuracy is a fraction: 3 places, so 17/18 reads 0.944 (0.94 at 2) and tfidf's 9/18 0.500
    f1 = f1_score(LABELS, tfidf, average="macro", zero_division=0)
    assert "| cnn | 2 | 0.944 ± 0.000 | [0.944, 0.944] |" in md and f"| tfidf | 0.500 | {f1:.3f} |" in md


def test_a_baseline_the_runs_record_keeps_their_columns_in_report_csv(tmp_path):
    tfidf = ["libs" if i % 2 else l for i, l in enumerate(LABELS)]
    for seed in range(2):
        run = tmp_path / f"cnn{seed}"
        _classification_run(run, "cnn", seed, list(LABELS), tfidf)
        scored = json.loads((run / "eval_test.json").read_text())
        # a recorded score unlike what the report computes (0.5), so that a copy from the report would show
        (run / "eval_test.json").write_text(json.dumps({**scored, "baseline_tfidf_accuracy": 0.125}))
    report.report(tmp_path, tmp_path / "report", references=lambda run: LABELS,
                  splits=lambda run: ([""] * len(LABELS), LABELS, [], None))
    with (tmp_path / "report" / "report.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [k for k in rows[0] if k.startswith("test_baseline_")] == ["test_baseline_tfidf_accuracy"]
    assert {r["test_baseline_tfidf_accuracy"] for r in rows} == {"0.125"}


def test_a_baseline_with_a_prediction_count_unlike_the_references_is_refused(tmp_path):
    import pytest  # noqa: PLC0415

    for seed in range(2):
        _classification_run(tmp_path / f"cnn{seed}", "cnn", seed, list(LABELS), LABELS[:-1])
    with pytest.raises(SystemExit, match="tfidf has 17 test predictions for 18 references"):
        report.report(tmp_path, tmp_path / "report", references=lambda run: LABELS,
                      splits=lambda run: ([""] * len(LABELS), LABELS, [], None))
