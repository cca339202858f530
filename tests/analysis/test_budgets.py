"""One comparison across budgets, checked against hand counts, NumPy and scipy's one-sample t-test (the paired
test computed another way), on report.csv files written here the way `python -m research.report` writes them."""
from __future__ import annotations

import csv
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from research import scaling
from research.analysis import budgets
from research.config import REPO
from tests.helpers.reports import grid, report


def test_a_report_reads_into_scores_by_architecture_and_seed_at_its_runs_mean_flops(tmp_path):
    s = budgets.read(report(tmp_path / "small", grid({"cnn+cnn": [7.0, 8.0], "cnn+transformer": [4.0, 5.0]}),
                            flops=[1.00e12, 1.01e12, 1.02e12, 1.03e12]))
    assert s.name == "small" and s.metric == "bleu" and s.column == "test_bleu"
    assert s.scores == {"cnn+cnn": {0: 7.0, 1: 8.0}, "cnn+transformer": {0: 4.0, 1: 5.0}}
    assert math.isclose(s.flops, 1.015e12)
    assert budgets.read(tmp_path / "small" / "report.csv").scores == s.scores  # the file itself reads the same
    assert budgets.ranking(s) == ["cnn+cnn", "cnn+transformer"]


def test_without_every_runs_test_score_the_validation_score_counts(tmp_path):
    path = report(tmp_path / "r", grid({"cnn+cnn": [7.0, 8.0]}))
    lines = (path / "report.csv").read_text().splitlines()
    lines[2] = lines[2].replace(",8.0,", ",,")  # run 1 has no test score; its validation score is 7.0
    (path / "report.csv").write_text("\n".join(lines) + "\n")
    s = budgets.read(path)
    assert s.column == "validation_bleu" and s.scores == {"cnn+cnn": {0: 6.0, 1: 7.0}}


def test_a_report_without_flops_needs_its_budget_stated_and_a_stated_budget_must_agree(tmp_path):
    old = report(tmp_path / "old", grid({"cnn+cnn": [7.0, 8.0]}), flops=None)
    with pytest.raises(budgets.BadReport, match=r"does not record every run's train_flops.*old@FLOPS"):
        budgets.read(old)
    assert budgets.read(old, flops=8.2e12).flops == 8.2e12
    new = report(tmp_path / "new", grid({"cnn+cnn": [7.0, 8.0]}), flops=1e12)
    assert budgets.read(new, flops=1.04e12).flops == 1e12  # within 5%: the runs' own count is kept
    with pytest.raises(budgets.BadReport, match=r"spent 1e\+12 training FLOPs, not the 2e\+12 stated"):
        budgets.read(new, flops=2e12)


@pytest.mark.parametrize("spent, message", [
    ([1e12, 1.2e12], r"run 0 spent 1e\+12 training FLOPs and run 1 1.2e\+12: not one FLOPs budget"),
    ([1e12, "many"], r"run 1, train_flops: 'many' is not a number"),
])
def test_runs_budgeted_otherwise_or_unreadable_are_refused_by_name(tmp_path, spent, message):
    path = report(tmp_path / "r", grid({"cnn+cnn": [7.0, 8.0]}), flops=spent)
    with pytest.raises(budgets.BadReport, match=message):
        budgets.read(path)


def test_bad_reports_are_refused_with_what_is_wrong(tmp_path):
    with pytest.raises(budgets.BadReport, match="no such file"):
        budgets.read(tmp_path / "nowhere")
    twice = report(tmp_path / "twice", [("cnn", "cnn", 0, 7.0), ("cnn", "cnn", 0, 8.0)])
    with pytest.raises(budgets.BadReport, match="cnn\\+cnn has two runs of seed 0"):
        budgets.read(twice)
    other = report(tmp_path / "other", grid({"cnn+cnn": [7.0]}), drop=("overrides",))
    with pytest.raises(budgets.BadReport, match="no column overrides"):
        budgets.read(other)
    nan = report(tmp_path / "nan", [("cnn", "cnn", 0, float("nan"))])
    with pytest.raises(budgets.BadReport, match="run 0, test_bleu: 'nan' is not a finite number"):
        budgets.read(nan)


def test_sweeps_come_in_budget_order_and_only_when_they_compare(tmp_path):
    a = budgets.read(report(tmp_path / "a", grid({"cnn+cnn": [1.0, 2.0]}), flops=4e12))
    b = budgets.read(report(tmp_path / "b", grid({"cnn+cnn": [3.0, 4.0]}), flops=1e12))
    assert [s.name for s in budgets.together([a, b])] == ["b", "a"]
    same = budgets.read(report(tmp_path / "same", grid({"cnn+cnn": [3.0, 4.0]}), flops=1.02e12))
    with pytest.raises(budgets.BadReport, match="at one budget"):
        budgets.together([b, same])
    lm = budgets.read(report(tmp_path / "lm", grid({"cnn+cnn": [3.0, 4.0]}), flops=8e12, metric="perplexity"))
    with pytest.raises(budgets.BadReport, match="scored by test_perplexity"):
        budgets.together([a, lm])
    alone = budgets.read(report(tmp_path / "alone", grid({"rnn+rnn": [3.0, 4.0]}), flops=8e12))
    with pytest.raises(budgets.BadReport, match="no architecture is in two"):
        budgets.together([b, alone])
    with pytest.raises(budgets.BadReport, match="two reports or more"):
        budgets.together([a])


def test_a_paired_difference_is_the_one_sample_t_on_the_seed_differences():
    rng = np.random.default_rng(0)
    a = {s: float(v) for s, v in enumerate(rng.normal(5, 1, 4))}
    b = {s: a[s] + float(d) for s, d in enumerate(rng.normal(1, 0.5, 4))}
    b[7] = 100.0  # a seed only one side has does not count
    found = budgets.paired(a, b)
    diff = np.array([b[s] - a[s] for s in range(4)])
    half = stats.t.ppf(0.975, 3) * diff.std(ddof=1) / np.sqrt(4)
    assert found.seeds == (0, 1, 2, 3)
    assert np.isclose(found.interval.mean, diff.mean()) and np.isclose(found.interval.low, diff.mean() - half)
    assert np.isclose(found.p, stats.ttest_1samp(diff, 0.0).pvalue)
    # One common seed, or differences without spread: a difference but no test.
    assert budgets.paired({0: 1.0}, {0: 3.0, 1: 9.0}).p is None and budgets.paired({0: 1.0}, {0: 3.0}).interval.mean == 2.0
    assert budgets.paired({0: 1.0, 1: 2.0}, {0: 2.0, 1: 3.0}).p is None
    assert budgets.paired({0: 1.0}, {1: 2.0}) is None


def test_changes_per_doubling_and_gaps_that_move_by_hand(tmp_path):
    # cnn+cnn: 7, 8 at 1e12 and 15, 16 at 4e12 (two doublings); cnn+transformer: 4, 4.5 and 12, 14.
    small = budgets.read(report(tmp_path / "s", grid({"cnn+cnn": [7.0, 8.0], "cnn+transformer": [4.0, 4.5]}), flops=1e12))
    large = budgets.read(report(tmp_path / "l", grid({"cnn+cnn": [15.0, 16.0], "cnn+transformer": [12.0, 14.0]}),
                                flops=4e12))
    sweeps = budgets.together([large, small])
    found = {c["architecture"]: c for c in budgets.changes(sweeps)}
    assert found["cnn+cnn"]["change"].interval.mean == 8.0 and found["cnn+cnn"]["per_doubling"] == 4.0
    assert found["cnn+transformer"]["change"].interval.mean == 8.75 and found["cnn+transformer"]["per_doubling"] == 4.375
    assert budgets.reference(sweeps) == "cnn+cnn"
    [at_small, at_large] = budgets.gaps(sweeps, "cnn+cnn")["cnn+transformer"]
    # gaps per seed: (-3, -3.5) then (-3, -2); moved by (0, +1.5)
    assert at_small["gap"].interval.mean == -3.25 and at_small["moved"] is None
    assert at_large["gap"].interval.mean == -2.5 and at_large["moved"].interval.mean == 0.75
    assert np.isclose(at_large["moved"].p, stats.ttest_1samp([0.0, 1.5], 0.0).pvalue)


def test_architectures_are_named_across_the_sweeps_so_what_one_sweep_shares_still_counts(tmp_path):
    # compare_summarization_copy varies the variant; a later sweep runs one variant at other budgets, so its own
    # report drops the variant (every run has it) and names its runs plain transformer+cnn.
    variants = [("transformer", "cnn", seed, score, f"+experiment/summary_copy={v}")
                for v, scores in (("cnn", [10.0, 12.0]), ("cnn_copy_coverage", [17.5, 17.3])) for seed, score in enumerate(scores)]
    later = [("transformer", "cnn", seed, score, "+experiment/summary_copy=cnn_copy_coverage",
              "trainer.budget_amount=8.2e12") for seed, score in enumerate([19.0, 20.0])]
    a = budgets.read(report(tmp_path / "copy", variants, flops=4.1e12))
    b = budgets.read(report(tmp_path / "later", later, flops=8.2e12))
    assert set(b.scores) == {"transformer+cnn"}  # on its own
    sweeps = budgets.together([a, b])
    copy = "transformer+cnn +experiment/summary_copy=cnn_copy_coverage"
    assert set(sweeps[0].scores) == {"transformer+cnn +experiment/summary_copy=cnn", copy}
    assert sweeps[1].scores == {copy: {0: 19.0, 1: 20.0}}
    [change] = budgets.changes(sweeps)
    assert change["architecture"] == copy and np.isclose(change["change"].interval.mean, 2.1)


def test_lower_is_better_ranks_the_lowest_perplexity_first(tmp_path):
    s = budgets.read(report(tmp_path / "lm", grid({"cnn+cnn": [30.0], "rnn+rnn": [20.0]}), metric="perplexity"))
    assert s.column == "test_perplexity" and budgets.ranking(s) == ["rnn+rnn", "cnn+cnn"]


def test_the_command_writes_the_tables_csv_and_plot_and_says_when_the_lead_changes(tmp_path):
    report(tmp_path / "small", grid({"cnn+cnn": [7.0, 8.0, 7.5], "transformer+cnn": [7.5, 8.5, 8.0]}), flops=None)
    report(tmp_path / "x2", grid({"cnn+cnn": [15.0, 16.0, 15.2], "transformer+cnn": [10.0, 11.0, 10.4]}), flops=2e12)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "research.scaling", f"{tmp_path / 'small'}@1e12", str(tmp_path / "x2"), "--out", str(out)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    md = (out / "scaling.md").read_text()
    # cnn+cnn minus transformer+cnn: -0.5 on every seed at 1e12 (no spread, no test); 5, 5, 4.8 at 2e12.
    p = stats.ttest_1samp([5.0, 5.0, 4.8], 0.0).pvalue
    assert (f"- transformer+cnn at 1e+12, cnn+cnn at 2e+12: -0.50 (p n/a) at 1e+12, "
            f"{np.mean([5.0, 5.0, 4.8]):+.2f} (p {p:.4f}) at 2e+12") in md
    assert "## Gap to cnn+cnn" in md and "Positive is better" in md  # the best at the largest budget
    gap = next(l for l in md.splitlines() if l.startswith("| transformer+cnn | 2e+12 |"))
    assert gap.split(" | ")[3] == f"{np.mean([10.0 - 15.0, 11.0 - 16.0, 10.4 - 15.2]):+.2f}"
    table = list(csv.DictReader((out / "scaling.csv").open()))
    assert [(r["architecture"], r["report"], r["rank"], r["mean"]) for r in table] == [
        ("transformer+cnn", "small", "1", "8.0"), ("cnn+cnn", "small", "2", "7.5"),
        ("cnn+cnn", "x2", "1", str(np.mean([15.0, 16.0, 15.2]))), ("transformer+cnn", "x2", "2", str(np.mean([10.0, 11.0, 10.4])))]
    assert (out / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Without the stated budget the old report is refused, with the way out in the message.
    cmd[3] = str(tmp_path / "small")
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "state its budget as" in done.stderr


def test_three_budgets_with_an_architecture_missing_from_the_middle(tmp_path):
    a = report(tmp_path / "a", grid({"cnn+cnn": [1.0, 2.0], "rnn+rnn": [1.5, 1.0], "lost+one": [9.0, 9.0]}), flops=1e12)
    b = report(tmp_path / "b", grid({"cnn+cnn": [3.0, 4.0]}), flops=2e12)
    c = report(tmp_path / "c", grid({"cnn+cnn": [5.0, 6.5], "rnn+rnn": [2.0, 2.0]}), flops=8e12)
    sweeps = budgets.together([budgets.read(x) for x in (c, a, b)])
    found = [(x["architecture"], x["from"].name, x["to"].name, x["change"].interval.mean, x["per_doubling"])
             for x in budgets.changes(sweeps)]
    # rnn+rnn goes from a to c, three doublings: (0.5 + 1.0) / 2 = 0.75 in all, 0.25 per doubling.
    assert found == [("cnn+cnn", "a", "b", 2.0, 2.0), ("cnn+cnn", "b", "c", 2.25, 1.125), ("rnn+rnn", "a", "c", 0.75, 0.25)]
    [at_a, at_c] = budgets.gaps(sweeps, "cnn+cnn")["rnn+rnn"]
    assert (at_a["gap"].interval.mean, at_c["gap"].interval.mean) == (-0.25, -3.75)
    assert at_c["moved"].interval.mean == -3.5  # gaps (0.5, -1.0) then (-3.0, -4.5)
    assert scaling.order(sweeps) == ["cnn+cnn", "rnn+rnn", "lost+one"]
    # lost+one leads at a by mean but is not at c: the lead is compared among the architectures both have.
    assert budgets.leaders([sweeps[0], sweeps[2]]) == []


def test_a_perplexity_comparison_says_lower_is_better_and_signs_its_changes(tmp_path):
    a = report(tmp_path / "a", grid({"cnn+cnn": [30.0, 32.0], "rnn+rnn": [20.0, 21.0]}), flops=1e12, metric="perplexity")
    b = report(tmp_path / "b", grid({"cnn+cnn": [18.0, 19.0], "rnn+rnn": [19.0, 19.5]}), flops=2e12, metric="perplexity")
    sweeps = budgets.together([budgets.read(a), budgets.read(b)])
    md = scaling.markdown(sweeps, "cmd")
    assert "(lower is better)" in md and "Negative is better" in md and "## Gap to cnn+cnn" in md
    # cnn+cnn minus rnn+rnn: 10, 11 at 1e12 (worse) and -1, -0.5 at 2e12 (better)
    p = [stats.ttest_1samp(d, 0.0).pvalue for d in ([10.0, 11.0], [-1.0, -0.5])]
    assert f"- rnn+rnn at 1e+12, cnn+cnn at 2e+12: +10.50 (p {p[0]:.4f}) at 1e+12, -0.75 (p {p[1]:.4f}) at 2e+12" in md
    row = next(l for l in md.splitlines() if l.startswith("| cnn+cnn | 1e+12 → 2e+12 |"))
    assert row.split(" | ")[3] == "-12.50 ± 0.71" and row.split(" | ")[7] == "-12.50 |"
    # the change table's p-values, and Holm's adjustment of the two as one family, by hand
    changes = {"cnn+cnn": stats.ttest_1samp([-12.0, -13.0], 0.0).pvalue, "rnn+rnn": stats.ttest_1samp([-1.0, -1.5], 0.0).pvalue}
    low, high = sorted(changes.values())
    holm = {a: 2 * low if p == low else max(2 * low, high) for a, p in changes.items()}
    for arch, p in changes.items():
        cells = next(l for l in md.splitlines() if l.startswith(f"| {arch} | 1e+12 → 2e+12 |")).split(" | ")
        assert (cells[5], cells[6]) == (f"{p:.4f}", f"{holm[arch]:.4f}")


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace(",0,", ",0.5,", 1), "seed '0.5' is not a whole number"),
    (lambda t: t.replace("1000000000000.0", "0", 1), "train_flops 0 \\(a run spends some\\)"),
    (lambda t: t.replace(",bleu,", ",wer,"), "no task decides by 'wer'"),
    (lambda t: t.replace(",7.0,", ",,").replace(",6.0,", ",,"), "not every run has a test_bleu or a validation_bleu"),
    (lambda t: t.replace("cnn", "c\udcffnn"), "not a readable CSV file"),
])
def test_bad_cells_are_refused_with_the_file_and_what_is_wrong(tmp_path, edit, message):
    path = report(tmp_path / "r", grid({"cnn+cnn": [7.0, 8.0]})) / "report.csv"
    text = edit(path.read_text())
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(budgets.BadReport, match=message):
        budgets.read(path)


def test_the_command_refuses_a_report_given_twice_a_budget_that_is_no_number_and_an_out_that_is_a_file(tmp_path):
    a = report(tmp_path / "a", grid({"cnn+cnn": [1.0, 2.0]}), flops=None)
    b = report(tmp_path / "b", grid({"cnn+cnn": [3.0, 4.0]}), flops=4e12)
    (tmp_path / "file").write_text("mine")
    for args, message in ([f"{a}@1e12", f"{a}@2e12"], "is given twice"), ([f"{a}@1.2.3", str(b)], "'1.2.3' after the @"), \
            ([f"{a}@1e12", str(b), "--out", str(tmp_path / "file")], "--out .*file"):
        with pytest.raises(SystemExit, match=message):
            scaling.main([*args, "--out", str(tmp_path / "o")] if "--out" not in args else args)
    assert (tmp_path / "file").read_text() == "mine"


def test_a_stated_budget_is_an_at_sign_and_a_number_at_the_end():
    assert scaling.parse("results/a@b@8.2e12") == (scaling.Path("results/a@b"), 8.2e12)
    assert scaling.parse("results/a@b") == (scaling.Path("results/a@b"), None)
    with pytest.raises(budgets.BadReport, match="'1.2.3' after the @ is not a number"):
        scaling.parse("results/a@1.2.3")


def tagging(folder, scores: dict[str, list[float]], flops: float, lookup=0.269, **columns):
    """A tagging sweep's report.csv: scored by macro_f1, with the lookup baseline on both splits and decoys that
    are other scores of a baseline, not its macro_f1 on the test split."""
    extra = {"test_baseline_lookup_macro_f1": lookup, "validation_baseline_lookup_macro_f1": 0.418,
             "test_baseline_lookup_f1_COMMA": 0.32, "test_baseline_lookup_accuracy": 0.95, **columns}
    runs = [(enc, "none", seed, v) for enc, vs in scores.items() for seed, v in enumerate(vs)]  # taggers: no decoder
    return budgets.read(report(folder, runs, flops=flops, metric="macro_f1", extra=extra))


def test_the_baselines_read_are_those_of_the_scoring_split_and_metric(tmp_path):
    s = tagging(tmp_path / "t", {"cnn": [0.25, 0.24]}, 4e12)
    assert s.column == "test_macro_f1" and s.baselines == {"lookup": 0.269}
    # A baseline's name has no underscore, so for metric micro_f1 a ..._baseline_tfidf_label_micro_f1 column is
    # another score of tfidf, not a baseline called tfidf_label; a report without baseline columns has none.
    f1 = report(tmp_path / "f1", grid({"cnn+none": [0.5]}), metric="micro_f1",
                extra={"test_baseline_tfidf_label_micro_f1": 0.3, "test_baseline_tfidf_micro_f1": 0.4})
    assert budgets.read(f1).baselines == {"tfidf": 0.4}
    assert budgets.read(report(tmp_path / "none", grid({"cnn+none": [1.0]}))).baselines == {}


def test_a_baseline_that_differs_between_runs_or_is_missing_from_one_is_refused(tmp_path):
    with pytest.raises(budgets.BadReport, match=r"test_baseline_lookup_macro_f1: run 1 records 0.25 and run 0 0.269; "
                                                r"a baseline is fitted once per sweep"):
        tagging(tmp_path / "a", {"cnn": [0.25, 0.24]}, 4e12, lookup=[0.269, 0.25])
    with pytest.raises(budgets.BadReport, match=r"run 1, test_baseline_lookup_macro_f1: empty, while other runs record"):
        tagging(tmp_path / "b", {"cnn": [0.25, 0.24]}, 4e12, lookup=[0.269, ""])


def test_margins_over_a_baseline_and_where_an_architecture_passes_it(tmp_path):
    # cnn: below the lookup baseline (0.269) at 4e12, above at 8e12; rnn below at both.
    cnn4, cnn8 = [0.25, 0.245, 0.255], [0.28, 0.265, 0.29]
    sweeps = budgets.together([tagging(tmp_path / "x2", {"cnn": cnn8, "rnn": [0.24, 0.25, 0.245]}, 8e12),
                               tagging(tmp_path / "x1", {"cnn": cnn4, "rnn": [0.22, 0.221, 0.223]}, 4e12)])
    found = {(m["architecture"], m["sweep"].name): m for m in budgets.margins(sweeps)}
    assert len(found) == 4 and {m["baseline"] for m in found.values()} == {"lookup"}
    m = found[("cnn", "x2")]
    diff = np.array(cnn8) - 0.269
    assert np.isclose(m["margin"].interval.mean, diff.mean()) and m["margin"].seeds == (0, 1, 2)
    assert np.isclose(m["margin"].interval.high, diff.mean() + stats.t.ppf(0.975, 2) * diff.std(ddof=1) / np.sqrt(3))
    assert np.isclose(m["margin"].p, stats.ttest_1samp(cnn8, 0.269).pvalue)
    assert m["better"] == 2 and found[("cnn", "x1")]["better"] == 0  # 0.28 and 0.29 beat 0.269, 0.265 does not
    [crossed] = budgets.crossings(budgets.margins(sweeps))
    assert (crossed["from"]["sweep"].name, crossed["to"]["sweep"].name, crossed["to"]["architecture"]) == ("x1", "x2", "cnn")
    assert scaling.baseline_curves(sweeps) == {"lookup": [(4e12, 0.269), (8e12, 0.269)]}  # scaling.png's dashed line
    md = scaling.markdown(sweeps, "cmd")
    assert "## Against the baselines" in md and "| lookup | 0.269 | 0.269 |" in md
    assert (f"- cnn passes lookup between 4e+12 and 8e+12 FLOPs: margin {np.mean(cnn4) - 0.269:+.3f}, then "
            f"{np.mean(cnn8) - 0.269:+.3f}") in md
    # [0, 1] scores get 3 places throughout, so a margin of 0.011 is not rounded to 0.01
    assert f"| cnn | 0.250 ± 0.005 [{np.mean(cnn4) - stats.t.ppf(0.975, 2) * 0.005 / np.sqrt(3):.3f}," in md
