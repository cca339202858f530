"""`python -m research.tune REPORT[@KEY=VALUE] REPORT[@KEY=VALUE] ... --key KEY --out DIR`: one comparison across
the values of a setting, each value recorded by its own sweep.

compare_translation_longer ran four pairs at learning rate 0.003 and compare_translation_longer_lr the same pairs
at 0.006: `python -m research.tune experiments/results/compare_translation_longer@optim.learning_rate=0.003
experiments/results/compare_translation_longer_lr@optim.learning_rate=0.006 --key optim.learning_rate --out DIR`.
A report whose runs vary the key themselves needs no value stated. `--default encoder.positions=sinusoidal` says
that an override restates what runs without it resolve to, so that both name one architecture (report.csv records
overrides, not resolved configs); a run found in two reports with the same scores is then counted once. Writes
into --out:

  tune.md    each architecture at its value with the best validation mean, ranked on test, with its gap to the
             best paired by seed; the ranking at each value; each architecture's score at every value; and its
             change from value to value, paired by seed (research/analysis/settings.py says why and how)
  tune.png   each architecture's test score at each value: every run, the mean and its 95% t interval, the value
             chosen on validation ringed
  tune.csv   one row per architecture and value: runs, seeds, validation mean, test mean, std, interval, rank,
             whether the value is the one chosen, and on the chosen row "lowest" or "highest" where it is the
             lowest or highest value the architecture was run at (not bracketed; a better one may lie beyond)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from research import console, sweep
from research.analysis import budgets, confidence, plots, runs, sections, settings, tables
from research.analysis.runs import write_csv


def rows(s: settings.Settings) -> list[dict]:
    """tune.csv: one row per architecture and value."""
    chosen = settings.choose(s)
    edges = settings.edges(s)
    out = []
    for arch in settings.architectures(s):
        for value in s.values:
            if arch not in s.test[value]:
                continue
            i = confidence.t_interval(list(s.test[value][arch].values()))
            out.append({"architecture": arch, s.key: value, "runs": i.n,
                        "seeds": " ".join(map(str, sorted(s.test[value][arch]))),
                        f"validation_{s.metric}_mean": settings.mean(s.validation[value][arch]),
                        f"test_{s.metric}_mean": i.mean, f"test_{s.metric}_std": i.std, "ci_low": i.low, "ci_high": i.high,
                        "rank_at_value": settings.ranking(s, value).index(arch) + 1, "chosen": value == chosen[arch],
                        "edge": (edges.get(arch) or "") if value == chosen[arch] else ""})
    return out


def positions(s: settings.Settings) -> dict[str, float]:
    """value -> where tune.png draws it on its log axis: the number itself, or 2**i for the i-th of values that
    are not all positive numbers (evenly spaced, in `values`' order: a weight decay of 0 has no logarithm)."""
    try:
        found = {v: float(v) for v in s.values}
    except ValueError:
        found = {}
    if found and min(found.values()) > 0:
        return found
    return {v: 2.0 ** i for i, v in enumerate(s.values)}


def curves(s: settings.Settings) -> dict[str, list[tuple[float, list[float], confidence.Interval]]]:
    """What tune.png draws: per architecture, best first, (x, its runs' test scores, their interval) at each value
    it has."""
    x = positions(s)
    return {a: [(x[v], list(s.test[v][a].values()), confidence.t_interval(list(s.test[v][a].values())))
                for v in s.values if a in s.test[v]] for a in settings.architectures(s)}


def _mean_std(seeds: dict[int, float], d: int) -> str:
    i = confidence.t_interval(list(seeds.values()))
    return f"{i.mean:.{d}f}" + ("" if i.std is None else f" ± {i.std:.{d}f}")


def _signed(i: confidence.Interval, d: int) -> str:
    return f"{i.mean:+.{d}f}" + ("" if i.std is None else f" ± {i.std:.{d}f}")


def _p(found: budgets.Paired | None) -> str:
    return "" if found is None else tables.p_value(found.p)


def code_lines(s: settings.Settings) -> list[str]:
    """Which commit computed each report's runs, and a warning where they are several: runs of different code
    can differ by more than their setting (another draw of dropout masks, sums in another order)."""
    by_report: dict[str, list[str]] = {}
    for report, code, n in s.codes:
        by_report.setdefault(report, []).append(f"{runs.short_code(code)} ({n} run{'s' * (n != 1)})" if code else
                                                f"not recorded ({n} run{'s' * (n != 1)}; report.csv predates its code column)")
    versions = {code for _, code, _ in s.codes if code}
    head = (f"**Runs computed at {len(versions)} commits**: where the code they ran differs between them (`git diff A B "
            "-- research`), a difference between values may be partly the code's: " if len(versions) > 1
            else "Code of the runs: ")
    return [head + "; ".join(f"{report} {', '.join(found)}" for report, found in by_report.items()) + ".", ""]


def markdown(s: settings.Settings, command: str, defaults: tuple[str, ...] = ()) -> str:
    lower = settings.lower_is_better(s)
    d = tables.places([v for by in (s.test, s.validation) for at in by.values() for seeds in at.values()
                       for v in seeds.values()])
    archs = settings.architectures(s)
    chosen = settings.choose(s)
    edges = settings.edges(s)
    lines = [f"# Across {s.key}: " + ", ".join(f"{v} ({' '.join(s.reports[v])})" for v in s.values), "",
             f"One comparison at {len(s.values)} values of {s.key}, each from its own sweep, all at {s.flops:.3g} "
             f"training FLOPs a run, scored by **test {s.metric}** ({'lower' if lower else 'higher'} is better). "
             "Each architecture's value is chosen on its validation mean over seeds; the test set then decides. "
             "Differences are paired by seed (p: Student's paired t over the seeds both have); each sweep's "
             "report.md holds the tests on its test hypotheses. Command:", "", f"    {command}", ""]
    if defaults:
        lines += ["Taken as what the runs without them resolve to, and left out of the architecture names (stated in "
                  "the command): " + ", ".join(f"`{o}`" for o in defaults) + ".", ""]
    lines += code_lines(s)
    if s.repeats:
        grouped: dict[tuple, list[int]] = {}
        for arch, value, seed, report, first in s.repeats:
            grouped.setdefault((arch, value, report, first), []).append(seed)
        lines += [f"Counted once, since the same configuration and seed gave the same test and validation {s.metric} "
                  "in two reports: " + "; ".join(f"{arch} at {s.key}={value}, seeds {' '.join(map(str, seeds))}, of "
                                                 f"{report} (repeating {first})"
                                                 for (arch, value, report, first), seeds in grouped.items()) + ".", ""]
    lines += ["## Each at its chosen value", ""]
    body = []
    found = settings.tuned(s)
    adjusted = tables.holm_cells([None if t["gap"] is None else t["gap"].p for t in found])
    for t, holm in zip(found, adjusted):
        arch, value = t["architecture"], t["value"]
        i = confidence.t_interval(list(t["test"].values()))
        gap = t["gap"]
        if gap is None:  # the best itself, or no seed in common with it
            cells = ["", "", "", ""] if arch == archs[0] else ["no seed in common", "", "", ""]
        else:
            cells = [f"{gap.interval.mean:+.{d}f}", tables.interval(gap.interval.low, gap.interval.high, d), _p(gap),
                     holm]
        where = edges.get(arch)
        body.append([arch, value + (f" ({where} tried)" if where else ""), f"{settings.mean(s.validation[value][arch]):.{d}f}",
                     f"{_mean_std(t['test'], d)} {tables.interval(i.low, i.high, d)}".strip(), *cells])
    lines += [tables.table(["architecture", f"chosen {s.key}", f"validation {s.metric}", f"test {s.metric}, mean ± std",
                            f"gap to {archs[0]}", "95% CI", "p", "p, Holm"], body), ""]
    tested = sum(1 for cell in adjusted if cell)
    if tested:
        lines += [f"p, Holm: the gaps' p-values adjusted as one family of {tested} by Holm's step-down "
                  "procedure, which holds the chance of any false gap at 5%.", ""]
    lines += sections.edge_lines({a: {s.key: where} for a, where in edges.items() if where})
    lines += ["Ranked at each value alone (test mean):", ""]
    lines += [f"- {s.key}={v}: " + ", ".join(f"{a} {settings.mean(s.test[v][a]):.{d}f}" for a in settings.ranking(s, v))
              for v in s.values]
    lines += ["", "## Score at each value", "", f"Test {s.metric} mean ± std over seeds (validation mean in brackets); "
              "**bold**: the value chosen on validation.", ""]
    body = []
    for arch in archs:
        cells = []
        for v in s.values:
            if arch not in s.test[v]:
                cells.append("")
                continue
            cell = f"{_mean_std(s.test[v][arch], d)} ({settings.mean(s.validation[v][arch]):.{d}f}, n={len(s.test[v][arch])})"
            cells.append(f"**{cell}**" if chosen[arch] == v else cell)
        body.append([arch, *cells])
    lines += [tables.table(["architecture", *[f"{s.key}={v}" for v in s.values]], body), "", "![tune.png](tune.png)", ""]
    lines += ["## Change from value to value", "", f"Test {s.metric} at the later value minus at the earlier, seed by "
              f"seed; {'negative' if lower else 'positive'} is better.", ""]
    body = [[c["architecture"], f"{c['from']} → {c['to']}", " ".join(map(str, c["change"].seeds)),
             _signed(c["change"].interval, d), tables.interval(c["change"].interval.low, c["change"].interval.high, d),
             _p(c["change"])] for c in settings.changes(s)]
    lines += [tables.table(["architecture", s.key, "seeds", "change, mean ± std", "95% CI", "p"], body), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    console.setup_logging()
    p = argparse.ArgumentParser(prog="python -m research.tune", description=__doc__.split("\n\n")[0])
    p.add_argument("reports", nargs="+", help="report folders (or report.csv files), each optionally REPORT@KEY=VALUE")
    p.add_argument("--key", required=True, help="the setting compared (optim.learning_rate)")
    p.add_argument("--out", type=Path, required=True, help="where to write tune.md and tune.csv")
    p.add_argument("--default", action="append", default=[], metavar="KEY=VALUE",
                   help="an override that restates a default (encoder.positions=sinusoidal): left out of the "
                        "architecture names, so runs with it and runs without it are one architecture; repeatable")
    args = p.parse_args(argv)
    key = sweep.override_key(args.key)
    defaults = tuple(args.default)
    try:
        for d in defaults:
            if settings.key_value(d) is None:
                raise budgets.BadReport(f"--default {d}: give it as KEY=VALUE (encoder.positions=sinusoidal)")
            if sweep.override_key(d) == key:
                raise budgets.BadReport(f"--default {d}: {key} is the setting compared, not a default")
        found = []
        for arg in args.reports:
            path, stated_key, value = settings.parse(arg)
            if stated_key is not None and stated_key != key:
                raise budgets.BadReport(f"{arg}: states {stated_key}, but --key is {key}")
            found.append(settings.read(path, key, value))
        s = settings.together(key, found, defaults)
    except budgets.BadReport as e:
        raise SystemExit(f"error: {e}") from None
    console.out_folder(args.out)
    command = ("python -m research.tune " + " ".join(args.reports) + f" --key {args.key}"
               + "".join(f" --default {d}" for d in defaults) + f" --out {args.out}")
    table = rows(s)
    write_csv(args.out / "tune.csv", table, list(table[0]))
    x = positions(s)
    plots.setting_plot(curves(s), list(x.values()), list(x), s.key, f"test_{s.metric}", args.out / "tune.png",
                       chosen={a: x[v] for a, v in settings.choose(s).items()})
    (args.out / "tune.md").write_text(markdown(s, command, defaults))
    print(f"{len(s.values)} values of {key}, {len(settings.architectures(s))} architectures -> {args.out / 'tune.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
