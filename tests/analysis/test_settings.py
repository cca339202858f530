"""One comparison across the values of a setting (`research.tune`), checked against hand counts and scipy's one-sample
t-test on the seed differences (the paired test computed another way), on report.csv files written the way
`python -m research.report` writes them."""
from __future__ import annotations

import csv

import pytest
from scipy import stats

from research import tune
from research.analysis import budgets, settings, tables
from tests.helpers.reports import grid, report

LR = "optim.learning_rate"


def at(folder, test: dict[str, list[float]], validation: dict[str, list[float]], flops=1e12, metric="bleu", extra=()):
    """A report of `test` scores by architecture and seed, with the `validation` scores given (not derived)."""
    runs = [(*r, *extra) for r in grid(test)]
    val = [v for vs in validation.values() for v in vs]
    return report(folder, runs, flops=flops, metric=metric, drop=(f"validation_{metric}",),
                  extra={f"validation_{metric}": val})


def test_a_stated_value_applies_to_every_run_and_an_override_to_its_own(tmp_path):
    stated = settings.read(at(tmp_path / "a", {"cnn+cnn": [7.0, 8.0]}, {"cnn+cnn": [3.0, 4.0]}), LR, "0.003")
    assert [(r["value"], r["seed"], r["test"], r["validation"]) for r in stated] == [("0.003", 0, 7.0, 3.0),
                                                                                    ("0.003", 1, 8.0, 4.0)]
    # a sweep that varied the rate itself: each run's own override gives its value, none stated
    runs = [("cnn", "cnn", 0, 9.0, f"+{LR}=0.006"), ("cnn", "cnn", 0, 6.0, f"{LR}=0.01")]
    varied = settings.read(report(tmp_path / "b", runs), LR)
    assert [(r["value"], r["test"], r["validation"]) for r in varied] == [("0.006", 9.0, 8.0), ("0.01", 6.0, 5.0)]


def test_runs_without_a_value_or_with_two_are_refused(tmp_path):
    plain = at(tmp_path / "a", {"cnn+cnn": [7.0]}, {"cnn+cnn": [3.0]})
    with pytest.raises(budgets.BadReport, match=f"run 0: no {LR} override; state the report's value as .*@{LR}=VALUE"):
        settings.read(plain, LR)
    overridden = report(tmp_path / "b", [("cnn", "cnn", 0, 9.0, f"{LR}=0.006")])
    with pytest.raises(budgets.BadReport, match=f"run 0: its override {LR}=0.006 disagrees with the {LR}=0.003 stated"):
        settings.read(overridden, LR, "0.003")
    no_test = report(tmp_path / "c", grid({"cnn+cnn": [7.0]}), drop=("test_bleu",))
    with pytest.raises(budgets.BadReport, match="not every run has a test_bleu score; a setting is chosen on validation"):
        settings.read(no_test, LR, "0.003")


@pytest.mark.parametrize("arg, expected", [("r", ("r", None, None)), (f"x/r@+{LR}=0.01", ("x/r", LR, "0.01")),
                                           ("a@b/r@k=v", ("a@b/r", "k", "v"))])
def test_report_arguments_parse_into_path_key_and_value(arg, expected):
    path, key, value = settings.parse(arg)
    assert (str(path), key, value) == expected


@pytest.mark.parametrize("arg", ["r@0.003", "r@=0.003", f"r@{LR}="])
def test_a_stated_setting_without_key_and_value_is_refused(arg):
    with pytest.raises(budgets.BadReport, match="after the @ give the report's setting as KEY=VALUE"):
        settings.parse(arg)


def two_rates(tmp_path, metric="bleu"):
    """cnn+cnn best at 0.003 by validation and test; transformer+cnn better at 0.006 on validation but not on test
    (so the choice must not read test); cnn+transformer only at 0.003."""
    low = at(tmp_path / "low", {"cnn+cnn": [10.0, 11.0, 12.0], "transformer+cnn": [8.0, 8.5, 9.5],
                                "cnn+transformer": [5.0, 6.0, 7.0]},
             {"cnn+cnn": [6.0, 6.5, 7.0], "transformer+cnn": [4.0, 4.0, 4.0], "cnn+transformer": [3.0, 3.0, 3.0]},
             metric=metric)
    high = at(tmp_path / "high", {"cnn+cnn": [9.0, 10.5, 10.0], "transformer+cnn": [8.0, 8.0, 9.0]},
              {"cnn+cnn": [5.0, 5.0, 5.0], "transformer+cnn": [4.5, 4.5, 4.5]}, metric=metric)
    return settings.together(LR, [settings.read(high, LR, "0.006"), settings.read(low, LR, "0.003")])


def test_the_values_are_ordered_and_architectures_named_across_reports(tmp_path):
    s = two_rates(tmp_path)
    assert s.values == ("0.003", "0.006") and s.reports == {"0.003": ("low",), "0.006": ("high",)}
    assert set(s.test["0.003"]) == {"cnn+cnn", "transformer+cnn", "cnn+transformer"}
    assert s.test["0.006"] == {"cnn+cnn": {0: 9.0, 1: 10.5, 2: 10.0}, "transformer+cnn": {0: 8.0, 1: 8.0, 2: 9.0}}
    assert s.validation["0.006"]["transformer+cnn"] == {0: 4.5, 1: 4.5, 2: 4.5}


def test_each_architecture_gets_the_value_of_its_best_validation_mean_and_test_decides_among_them(tmp_path):
    s = two_rates(tmp_path)
    # validation means by hand: cnn+cnn 6.5 at 0.003 against 5.0; transformer+cnn 4.0 against 4.5
    assert settings.choose(s) == {"cnn+cnn": "0.003", "transformer+cnn": "0.006", "cnn+transformer": "0.003"}
    found = settings.tuned(s)
    # test means at the chosen values: 11.0, 8.333 (not 0.003's 8.667, which validation did not choose), 6.0
    assert [(t["architecture"], t["value"]) for t in found] == [("cnn+cnn", "0.003"), ("transformer+cnn", "0.006"),
                                                               ("cnn+transformer", "0.003")]
    assert found[0]["gap"] is None
    diffs = [8.0 - 10.0, 8.0 - 11.0, 9.0 - 12.0]  # transformer+cnn at 0.006 minus cnn+cnn at 0.003, seed by seed
    gap = found[1]["gap"]
    assert gap.seeds == (0, 1, 2) and gap.interval.mean == pytest.approx(sum(diffs) / 3)
    assert gap.p == pytest.approx(stats.ttest_1samp(diffs, 0.0).pvalue)
    assert found[2]["gap"].interval.mean == pytest.approx(-5.0) and found[2]["gap"].p is None  # no spread: no test


def test_a_choice_at_the_lowest_or_highest_value_an_architecture_ran_at_is_not_bracketed(tmp_path):
    s = two_rates(tmp_path)
    # two values: either choice is at an edge; one value: nothing was chosen from
    assert settings.edges(s) == {"cnn+cnn": "lowest", "transformer+cnn": "highest", "cnn+transformer": None}
    middle = at(tmp_path / "mid", {"cnn+cnn": [11.5, 11.0, 12.5], "transformer+cnn": [8.0, 8.0, 8.0]},
                {"cnn+cnn": [7.5, 7.5, 7.5], "transformer+cnn": [4.2, 4.2, 4.2]})
    three = settings.together(LR, [settings.read(tmp_path / "low", LR, "0.003"),
                                   settings.read(middle, LR, "0.0045"), settings.read(tmp_path / "high", LR, "0.006")])
    # validation by hand: cnn+cnn 6.5, 7.5, 5.0 (0.0045 inside); transformer+cnn 4.0, 4.2, 4.5 (0.006 still the top)
    assert settings.choose(three) == {"cnn+cnn": "0.0045", "transformer+cnn": "0.006", "cnn+transformer": "0.003"}
    assert settings.edges(three) == {"cnn+cnn": None, "transformer+cnn": "highest", "cnn+transformer": None}


def test_a_lower_is_better_metric_chooses_the_lowest_validation_mean(tmp_path):
    s = two_rates(tmp_path, metric="perplexity")
    assert settings.choose(s) == {"cnn+cnn": "0.006", "transformer+cnn": "0.003", "cnn+transformer": "0.003"}
    assert settings.ranking(s, "0.003") == ["cnn+transformer", "transformer+cnn", "cnn+cnn"]


def test_changes_from_value_to_value_are_paired_by_seed(tmp_path):
    s = two_rates(tmp_path)
    found = {c["architecture"]: c for c in settings.changes(s)}
    assert set(found) == {"cnn+cnn", "transformer+cnn"}  # cnn+transformer is at one value
    diffs = [9.0 - 10.0, 10.5 - 11.0, 10.0 - 12.0]
    c = found["cnn+cnn"]
    assert (c["from"], c["to"]) == ("0.003", "0.006") and c["change"].interval.mean == pytest.approx(sum(diffs) / 3)
    assert c["change"].p == pytest.approx(stats.ttest_1samp(diffs, 0.0).pvalue)


def test_reports_that_cannot_be_one_comparison_are_refused(tmp_path):
    a = settings.read(at(tmp_path / "a", {"cnn+cnn": [7.0]}, {"cnn+cnn": [3.0]}), LR, "0.003")
    again = settings.read(at(tmp_path / "b", {"cnn+cnn": [7.5]}, {"cnn+cnn": [3.5]}), LR, "0.003")
    with pytest.raises(budgets.BadReport, match="needs two values or more"):
        settings.together(LR, [a, again])
    twice = settings.read(at(tmp_path / "c", {"cnn+cnn": [8.0]}, {"cnn+cnn": [4.0]}), LR, "0.006")
    with pytest.raises(budgets.BadReport, match=r"cnn\+cnn has two runs of seed 0 at optim.learning_rate=0.003 with "
                                                r"different scores \(a, run 0: test 7.0, validation 3.0; b, run 0: "
                                                r"test 7.5, validation 3.5\)"):
        settings.together(LR, [a, again, twice])
    bigger = settings.read(at(tmp_path / "d", {"cnn+cnn": [8.0]}, {"cnn+cnn": [4.0]}, flops=2e12), LR, "0.006")
    with pytest.raises(budgets.BadReport, match="a setting compared across budgets is confounded"):
        settings.together(LR, [a, bigger])
    other_task = settings.read(at(tmp_path / "e", {"cnn+cnn": [8.0]}, {"cnn+cnn": [4.0]}, metric="rougeL"), LR, "0.006")
    with pytest.raises(budgets.BadReport, match="e is scored by rougeL, a by bleu"):
        settings.together(LR, [a, other_task])
    elsewhere = settings.read(at(tmp_path / "f", {"rnn+rnn": [8.0]}, {"rnn+rnn": [4.0]}), LR, "0.006")
    with pytest.raises(budgets.BadReport, match="no architecture is at two values"):
        settings.together(LR, [a, elsewhere])


def test_the_command_writes_the_tuned_ranking_and_a_row_per_architecture_and_value(tmp_path):
    two_rates(tmp_path)  # writes the reports
    out = tmp_path / "out"
    assert tune.main([f"{tmp_path / 'low'}@{LR}=0.003", f"{tmp_path / 'high'}@{LR}=0.006", "--key", LR,
                      "--out", str(out)]) == 0
    with (out / "tune.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [(r["architecture"], r[LR], r["chosen"], r["rank_at_value"]) for r in table] == [
        ("cnn+cnn", "0.003", "True", "1"), ("cnn+cnn", "0.006", "False", "1"),
        ("transformer+cnn", "0.003", "False", "2"), ("transformer+cnn", "0.006", "True", "2"),
        ("cnn+transformer", "0.003", "True", "3")]
    assert float(table[3]["test_bleu_mean"]) == pytest.approx(25 / 3)
    assert float(table[3]["validation_bleu_mean"]) == pytest.approx(4.5)
    text = (out / "tune.md").read_text()
    assert "| transformer+cnn | 0.006 (highest tried) | 4.50 | 8.33 ± 0.58 [6.90, 9.77] | -2.67 |" in text
    assert ("so not bracketed: a better value may lie beyond it, and the comparison below holds for the values tried "
            f"only. cnn+cnn (the lowest {LR} tried); transformer+cnn (the highest {LR} tried).") in text
    assert [r["edge"] for r in table] == ["lowest", "", "", "highest", ""]  # cnn+transformer ran at one value only
    assert "![tune.png](tune.png)" in text and (out / "tune.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"- {LR}=0.006: cnn+cnn 9.83, transformer+cnn 8.33" in text
    assert "| cnn+cnn | **11.00 ± 1.00 (6.50, n=3)** | 9.83 ± 0.76 (5.00, n=3) |" in text


def test_the_plot_draws_each_architectures_test_scores_at_each_value_it_has(tmp_path):
    s = two_rates(tmp_path)
    assert tune.positions(s) == {"0.003": 0.003, "0.006": 0.006}
    drawn = tune.curves(s)
    assert list(drawn) == ["cnn+cnn", "transformer+cnn", "cnn+transformer"]  # best at its chosen value first
    assert [(x, scores) for x, scores, _ in drawn["transformer+cnn"]] == [(0.003, [8.0, 8.5, 9.5]), (0.006, [8.0, 8.0, 9.0])]
    assert drawn["cnn+transformer"][0][2].mean == pytest.approx(6.0) and len(drawn["cnn+transformer"]) == 1
    # values that are not all positive numbers are spaced evenly, in their order
    other = settings.Settings("model.pooling", ("mean", "max"), *[getattr(s, f) for f in ("metric", "test",
                              "validation", "reports", "flops")])
    assert tune.positions(other) == {"mean": 1.0, "max": 2.0}
    zero = settings.Settings("optim.weight_decay", ("0", "0.1"), *[getattr(s, f) for f in ("metric", "test",
                             "validation", "reports", "flops")])
    assert tune.positions(zero) == {"0": 1.0, "0.1": 2.0}


def test_the_command_refuses_a_stated_key_other_than_the_one_compared(tmp_path):
    two_rates(tmp_path)
    with pytest.raises(SystemExit, match=r"states optim.warmup, but --key is optim.learning_rate"):
        tune.main([f"{tmp_path / 'low'}@optim.warmup=10", f"{tmp_path / 'high'}@{LR}=0.006", "--key", LR,
                   "--out", str(tmp_path / "o")])


def test_an_architecture_that_shares_no_seed_with_the_best_says_so(tmp_path):
    best = at(tmp_path / "a", {"cnn+cnn": [10.0, 11.0]}, {"cnn+cnn": [5.0, 5.0]})
    other = report(tmp_path / "b", [("cnn", "cnn", 0, 9.0), ("rnn", "rnn", 7, 4.0)])  # rnn+rnn: seed 7 only
    out = tmp_path / "out"
    tune.main([f"{best}@{LR}=0.003", f"{other}@{LR}=0.006", "--key", LR, "--out", str(out)])
    assert "| rnn+rnn | 0.006 | 3.00 | 4.00 | no seed in common |  |  |" in (out / "tune.md").read_text()


def test_a_stated_default_names_one_architecture_and_a_run_repeated_with_the_same_scores_counts_once(tmp_path):
    # a sweep that varied the positions (sinusoidal, the default, and relative) at 0.006 ...
    varied = report(tmp_path / "varied", [("t", "cnn", 0, 9.0, f"{LR}=0.006", "encoder.positions=sinusoidal"),
                                          ("t", "cnn", 0, 12.0, f"{LR}=0.006", "encoder.positions=relative"),
                                          ("t", "cnn", 0, 8.0, f"{LR}=0.01", "+encoder.positions=sinusoidal")])
    # ... and one that left them at the default, at 0.003 and 0.006: its run at 0.006 is the same as varied's first
    plain = report(tmp_path / "plain", [("t", "cnn", 0, 7.0, f"{LR}=0.003"), ("t", "cnn", 0, 9.0, f"{LR}=0.006")])
    apart = settings.together(LR, [settings.read(varied, LR), settings.read(plain, LR)])
    assert set(apart.test["0.006"]) == {"t+cnn", "t+cnn encoder.positions=sinusoidal", "t+cnn encoder.positions=relative"}
    one = settings.together(LR, [settings.read(varied, LR), settings.read(plain, LR)],
                            defaults=("encoder.positions=sinusoidal",))
    assert one.test == {"0.003": {"t+cnn": {0: 7.0}}, "0.006": {"t+cnn": {0: 9.0}, "t+cnn encoder.positions=relative":
                                                                 {0: 12.0}}, "0.01": {"t+cnn": {0: 8.0}}}
    assert one.repeats == (("t+cnn", "0.006", 0, "plain", "varied"),)
    assert settings.edges(one)["t+cnn"] is None  # 0.006 lies between 0.003 and 0.01 once the two are one
    out = tmp_path / "out"
    tune.main([str(varied), str(plain), "--key", LR, "--default", "encoder.positions=sinusoidal", "--out", str(out)])
    text = (out / "tune.md").read_text()
    assert "--key optim.learning_rate --default encoder.positions=sinusoidal --out" in text
    assert "Counted once, since the same configuration and seed gave the same test and validation bleu in two " \
           "reports: t+cnn at optim.learning_rate=0.006, seeds 0, of plain (repeating varied)." in text


@pytest.mark.parametrize("default, message", [("encoder.positions", "give it as KEY=VALUE"),
                                              (f"{LR}=0.003", f"{LR} is the setting compared, not a default")])
def test_a_default_without_a_value_or_of_the_compared_key_is_refused(tmp_path, default, message):
    two_rates(tmp_path)
    with pytest.raises(SystemExit, match=message):
        tune.main([f"{tmp_path / 'low'}@{LR}=0.003", f"{tmp_path / 'high'}@{LR}=0.006", "--key", LR,
                   "--default", default, "--out", str(tmp_path / "o")])


def test_the_gaps_p_values_are_adjusted_as_one_family(tmp_path):
    low = at(tmp_path / "low", {"cnn+cnn": [10.0, 11.0, 12.0], "rnn+cnn": [8.0, 9.5, 9.0], "t+cnn": [9.0, 9.0, 10.5]},
             {"cnn+cnn": [5.0] * 3, "rnn+cnn": [4.0] * 3, "t+cnn": [4.0] * 3})
    high = at(tmp_path / "high", {"cnn+cnn": [9.0, 9.0, 9.0], "rnn+cnn": [1.0, 1.0, 1.0], "t+cnn": [1.0, 1.0, 1.0]},
              {"cnn+cnn": [1.0] * 3, "rnn+cnn": [1.0] * 3, "t+cnn": [1.0] * 3})
    out = tmp_path / "out"
    tune.main([f"{low}@{LR}=0.003", f"{high}@{LR}=0.006", "--key", LR, "--out", str(out)])
    p = {"rnn+cnn": stats.ttest_1samp([-2.0, -1.5, -3.0], 0.0).pvalue,
         "t+cnn": stats.ttest_1samp([-1.0, -2.0, -1.5], 0.0).pvalue}
    first, second = sorted(p, key=p.get)
    holm = {first: 2 * p[first], second: max(2 * p[first], p[second])}  # Holm by hand for two tests
    text = (out / "tune.md").read_text()
    for arch in p:
        row = next(line for line in text.splitlines() if line.startswith(f"| {arch} |"))
        assert row.endswith(f"| {tables.p_value(p[arch])} | {tables.p_value(holm[arch])} |"), row
    assert "adjusted as one family of 2 by Holm's step-down procedure" in text


def test_tune_md_names_the_code_of_each_reports_runs_and_warns_where_it_is_several(tmp_path):
    scores = [("cnn", "cnn", 0, 10.0), ("cnn", "cnn", 1, 11.0)]
    low = report(tmp_path / "low", scores, extra={"code": ["a" * 40, "b" * 40 + "+dirty"]})
    high = report(tmp_path / "high", scores, extra={"code": "a" * 40})
    old = report(tmp_path / "old", scores)  # a report.csv from before the code column
    out = tmp_path / "out"
    tune.main([f"{low}@{LR}=0.003", f"{high}@{LR}=0.006", "--key", LR, "--out", str(out)])
    assert ("**Runs computed at 2 commits**: where the code they ran differs between them (`git diff A B -- research`), a "
            "difference between values may be partly the code's: low aaaaaaa (1 run), bbbbbbb+dirty (1 run); high aaaaaaa "
            "(2 runs).") in (out / "tune.md").read_text()
    tune.main([f"{high}@{LR}=0.006", f"{old}@{LR}=0.01", "--key", LR, "--out", str(out)])
    assert ("Code of the runs: high aaaaaaa (2 runs); old not recorded (2 runs; report.csv predates its code column)."
            in (out / "tune.md").read_text())
