"""One comparison recorded at several values of one setting (the learning rate), as sweeps that each ran at one
value: each architecture's score at each value, its change from value to value, and each architecture at its best
value, chosen on validation and compared on test.

Why: every translation sweep trained at one shared learning rate, and a later sweep ran the same pairs at another.
`python -m research.report DIR --tune KEY` answers "which is best when each gets its own rate?" within one sweep
folder; this answers it from recorded reports (report.csv), whose runs may be on another machine or gone.

- A report's runs take the value that their overrides give the key (a sweep that varied it itself), or else the
  value stated for the report (`REPORT@optim.learning_rate=0.003`); a run with neither, or with both disagreeing,
  is refused.
- Architectures are named across all the reports at once, without the experiment, budget and tuned overrides, so a
  pair at 0.003 in one sweep and at 0.006 in another is one architecture.
- The reports must be of one task, scored on test in every run, at one FLOPs budget: a setting compared across
  budgets would be confounded with them (`research.scaling` compares budgets).
- The choice reads only validation means (the task metric's last validation value, as `research.report` records
  it); the test scores of the chosen values therefore carry no selection bias. Differences are paired by seed,
  as in `analysis/budgets.py`, since sweeps of one comparison share their seeds.
"""
from __future__ import annotations

import collections
import dataclasses
import statistics
from pathlib import Path

from research import sweep, tasks
from research.analysis import budgets, runs, tuning


@dataclasses.dataclass(frozen=True)
class Settings:
    key: str  # the override key the values are of (optim.learning_rate)
    values: tuple[str, ...]  # in ascending order where all are numbers, else as first seen
    metric: str
    test: dict[str, dict[str, dict[int, float]]]  # value -> architecture -> seed -> test score
    validation: dict[str, dict[str, dict[int, float]]]  # the same, validation scores
    reports: dict[str, tuple[str, ...]]  # value -> the reports its runs came from
    flops: float  # the budget all the reports share (their runs' mean training FLOPs)
    repeats: tuple[tuple, ...] = ()  # (architecture, value, seed, report, the report it repeats): counted once
    codes: tuple[tuple[str, str | None, int], ...] = ()  # (report, the commit that computed runs of it or None, runs)


def parse(arg: str) -> tuple[Path, str | None, str | None]:
    """REPORT or REPORT@KEY=VALUE -> (path, key, value); an @ part without `=` is refused."""
    if "@" not in arg:
        return Path(arg), None, None
    path, stated = arg.rsplit("@", 1)
    found = key_value(stated)
    if found is None:
        raise budgets.BadReport(f"{arg}: after the @ give the report's setting as KEY=VALUE "
                                "(optim.learning_rate=0.003)")
    return Path(path), *found


def key_value(text: str) -> tuple[str, str] | None:
    """KEY=VALUE -> (the override key, as `sweep.override_key` writes it, value); None without both."""
    key, eq, value = text.partition("=")
    return (sweep.override_key(key), value) if eq and key and value else None


def read(path: Path, key: str, value: str | None = None) -> list[dict]:
    """The runs of one report, each with its `value` of `key`, its seed, test and validation scores and the
    overrides that name it: {"report", "value", "seed", "test", "validation", "encoder", "decoder", "_overrides",
    "run", "flops", "code"}."""
    test = budgets.read(path)
    if not test.column.startswith("test_"):
        raise budgets.BadReport(f"{test.path}: not every run has a test_{test.metric} score; a setting is chosen on "
                                "validation and judged on test")
    validation = budgets.read(path, column=f"validation_{test.metric}")
    out = []
    for t, v in zip(test.runs, validation.runs):
        found = [o.split("=", 1)[1] for o in t["_overrides"] if "=" in o and sweep.override_key(o) == key]
        where = f"{test.path}, run {t['run']}"
        if found and value is not None and found[0] != value:
            raise budgets.BadReport(f"{where}: its override {key}={found[0]} disagrees with the {key}={value} stated")
        if not found and value is None:
            raise budgets.BadReport(f"{where}: no {key} override; state the report's value as {path}@{key}=VALUE")
        out.append({"report": test.name, "value": found[0] if found else value, "seed": t["seed"], "test": t["score"],
                     "validation": v["score"], "encoder": t["encoder"], "decoder": t["decoder"], "run": t["run"],
                     "_overrides": t["_overrides"], "flops": test.flops, "metric": test.metric, "code": t["code"]})
    return out


def together(key: str, reports: list[list[dict]], defaults: tuple[str, ...] = ()) -> Settings:
    """The runs of several reports (`read`) as one comparison across the values of `key`.

    `defaults` are overrides (`encoder.positions=sinusoidal`) that restate what the runs without them resolve to:
    they are left out of the architecture names, so the arm of a sweep that varied the setting and a sweep that
    left it at its default name one architecture. report.csv holds overrides, not resolved configs, so this is the
    caller's statement. A run of one architecture, seed and value in two reports is counted once where its test and
    validation scores are the same (one configuration run twice: training is deterministic), else refused."""
    if len({r["value"] for rows in reports for r in rows}) < 2:
        raise budgets.BadReport(f"a comparison across values of {key} needs two values or more")
    rows = [dict(r) for found in reports for r in found]
    first = rows[0]
    for r in rows:
        if r["metric"] != first["metric"]:
            raise budgets.BadReport(f"{r['report']} is scored by {r['metric']}, {first['report']} by "
                                    f"{first['metric']}: not one comparison")
        if abs(r["flops"] / first["flops"] - 1) > budgets.SAME_BUDGET:
            raise budgets.BadReport(f"{first['report']} spent {first['flops']:.3g} training FLOPs a run and "
                                    f"{r['report']} {r['flops']:.3g}: a setting compared across budgets is confounded "
                                    "with them (python -m research.scaling compares budgets)")
    stated = {_setting(d) for d in defaults}
    for r in rows:
        r["_overrides"] = [o for o in r["_overrides"] if not _shared(o, key) and _setting(o) not in stated]
    runs.architectures(rows)
    values = _ordered([r["value"] for r in rows])
    test: dict[str, dict[str, dict[int, float]]] = {v: {} for v in values}
    validation: dict[str, dict[str, dict[int, float]]] = {v: {} for v in values}
    seen: dict[tuple, dict] = {}
    repeats = []
    for r in rows:
        at = (r["value"], r["architecture"], r["seed"])
        if at in seen:
            first = seen[at]
            if (first["test"], first["validation"]) != (r["test"], r["validation"]):
                raise budgets.BadReport(
                    f"{r['architecture']} has two runs of seed {r['seed']} at {key}={r['value']} with different scores "
                    f"({first['report']}, run {first['run']}: test {first['test']}, validation {first['validation']}; "
                    f"{r['report']}, run {r['run']}: test {r['test']}, validation {r['validation']})")
            repeats.append((r["architecture"], r["value"], r["seed"], r["report"], first["report"]))
            continue
        seen[at] = r
        test[r["value"]].setdefault(r["architecture"], {})[r["seed"]] = r["test"]
        validation[r["value"]].setdefault(r["architecture"], {})[r["seed"]] = r["validation"]
    archs = {a for v in values for a in test[v]}
    if not any(sum(a in test[v] for v in values) > 1 for a in archs):
        raise budgets.BadReport(f"no architecture is at two values of {key}: nothing to compare ("
                                + "; ".join(f"{key}={v}: {', '.join(sorted(test[v]))}" for v in values) + ")")
    reports_of = {v: tuple(dict.fromkeys(r["report"] for r in rows if r["value"] == v)) for v in values}
    codes = collections.Counter((r["report"], r["code"]) for r in rows)
    return Settings(key, tuple(values), first["metric"], test, validation, reports_of,
                    statistics.fmean(r["flops"] for r in rows), tuple(repeats),
                    tuple((report, code, n) for (report, code), n in codes.items()))


def _shared(override: str, key: str) -> bool:
    """Overrides that tell one report or value from another rather than one architecture from another."""
    return sweep.override_key(override) == key or budgets.tells_sweeps_apart(override)


def _setting(override: str) -> tuple[str, str]:
    """An override as (key, value), so that `+encoder.positions=x` and `encoder.positions=x` are one setting."""
    return sweep.override_key(override), override.split("=", 1)[1] if "=" in override else ""


def _ordered(values: list[str]) -> list[str]:
    distinct = list(dict.fromkeys(values))
    try:
        return sorted(distinct, key=float)
    except ValueError:
        return distinct


def lower_is_better(s: Settings) -> bool:
    return tasks.by_metric(s.metric).lower_is_better


def mean(seeds: dict[int, float]) -> float:
    """The mean over seeds of one architecture's scores at one value."""
    return statistics.fmean(seeds.values())


def architectures(s: Settings) -> list[str]:
    """Every architecture, in the order of its best test mean at its chosen value (`choose`), the better first."""
    sign = 1.0 if lower_is_better(s) else -1.0
    chosen = choose(s)
    return sorted(chosen, key=lambda a: (sign * mean(s.test[chosen[a]][a]), a))


def choose(s: Settings) -> dict[str, str]:
    """architecture -> the value with its best validation mean over seeds (the first in `values` on a tie)."""
    sign = 1.0 if lower_is_better(s) else -1.0
    out = {}
    for arch in sorted({a for v in s.values for a in s.validation[v]}):
        have = [v for v in s.values if arch in s.validation[v]]
        out[arch] = min(have, key=lambda v: (sign * mean(s.validation[v][arch]), s.values.index(v)))
    return out


def edges(s: Settings) -> dict[str, str | None]:
    """architecture -> "lowest" or "highest" where its chosen value is the lowest or highest it was run at (of two or
    more numeric values), else None: such a choice is not bracketed (`tuning.edge`)."""
    return {arch: tuning.edge(value, [v for v in s.values if arch in s.validation[v]])
            for arch, value in choose(s).items()}


def ranking(s: Settings, value: str) -> list[str]:
    """The architectures at `value`, by test mean, the better first."""
    sign = 1.0 if lower_is_better(s) else -1.0
    return sorted(s.test[value], key=lambda a: (sign * mean(s.test[value][a]), a))


def tuned(s: Settings) -> list[dict]:
    """Each architecture at its chosen value, the best first: {"architecture", "value", "test": seed -> score,
    "gap": its test score minus the best one's, paired by seed (budgets.Paired; None for the best itself)}."""
    chosen = choose(s)
    order = architectures(s)
    best = order[0]
    best_scores = s.test[chosen[best]][best]
    return [{"architecture": a, "value": chosen[a], "test": s.test[chosen[a]][a],
             "gap": None if a == best else budgets.paired(best_scores, s.test[chosen[a]][a])} for a in order]


def changes(s: Settings) -> list[dict]:
    """Each architecture's test score at each value minus at the previous value it has, paired by seed."""
    out = []
    for arch in architectures(s):
        have = [v for v in s.values if arch in s.test[v]]
        for a, b in zip(have, have[1:]):
            found = budgets.paired(s.test[a][arch], s.test[b][arch])
            if found is not None:
                out.append({"architecture": arch, "from": a, "to": b, "change": found})
    return out
