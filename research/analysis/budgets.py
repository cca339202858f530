"""One comparison recorded at several training budgets: each architecture's score at each budget, its change from
one budget to the next, and its gap to a reference architecture at each, all paired by seed.

Why paired by seed: the sweeps of one comparison share their seeds (compare_translation_longer and _x4 take
compare_translation_small's), so an architecture's run with seed s starts from the same weights and sees the same
batches at every budget, and two architectures' runs with seed s see the same batches. A difference taken within a
seed removes that seed's share of the variance, which over 3 seeds is much of it. The tests are Student's paired t
over the seeds both sides have (`scipy.stats.ttest_rel`), and every row says how many seeds; with 3, only large
effects reach p < 0.05, and each sweep's own report.md holds the stronger tests on the test hypotheses.

The input is what `python -m research.report` leaves, report.csv (one row per run), so recorded reports compare
without their runs. A sweep is placed at its runs' training FLOPs (the `train_flops` column) or, for a report
written before that column existed, at the budget its reader states (`read(..., flops=)`). Architectures are
named across all the reports at once, without the experiment and budget overrides, so that a variant one sweep
holds fixed (and its own report leaves unnamed) still matches that variant in a sweep that varied it.

A task's baselines (classification's TF-IDF model, tagging's lookup, summarization's leads; `research.tasks`) need
no training budget, and report.csv records each run's copy of their scores as `<split>_baseline_<name>_<metric>`
(the runs score their fitted ones; the report adds the test scores of the leads, which no run scores); `margins` sets every
architecture against them at every budget, which answers "does more compute get it past the baseline?".
"""
from __future__ import annotations

import csv
import dataclasses
import math
import statistics
from pathlib import Path

from scipy import stats

from research import sweep, tasks
from research.analysis import confidence, runs

# The runs of one sweep spend their FLOPs budget to within a step; runs further apart than this were budgeted
# otherwise (by steps, tokens or seconds), so the sweep has no one place on the FLOPs axis.
SAME_BUDGET = 0.05
REQUIRED = ("encoder", "decoder", "seed", "metric", "overrides")
BUDGET_KEYS = ("trainer.budget_amount", "trainer.budget")


class BadReport(ValueError):
    """A report that cannot be read, or reports that cannot be compared across budgets."""


@dataclasses.dataclass(frozen=True)
class Sweep:
    name: str  # the report's folder
    path: Path  # its report.csv
    flops: float  # its place on the compute axis, in training FLOPs
    metric: str
    column: str  # what scores it: test_<metric> where every run has one, else validation_<metric>
    runs: tuple[dict, ...]  # encoder, decoder, seed, score, run and _overrides of each run, as read
    scores: dict[str, dict[int, float]]  # architecture -> seed -> score; named within the report by `read`,
    # then across all the reports by `together`
    baselines: dict[str, float] = dataclasses.field(default_factory=dict)  # name -> its score in `column`'s split


@dataclasses.dataclass(frozen=True)
class Paired:
    """b - a over the seeds both have: mean, its 95% t interval, and the paired t-test's p (None for one seed or
    no spread, where no test applies)."""
    seeds: tuple[int, ...]
    interval: confidence.Interval
    p: float | None


def _float(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise BadReport(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise BadReport(f"{where}: {text!r} is not a finite number")
    return value


def read(path: Path, flops: float | None = None, column: str | None = None) -> Sweep:
    """The sweep of a report folder (or its report.csv); `flops` states its budget where the report has no
    `train_flops` column, and must agree with that column (within SAME_BUDGET) where it has one. `column`: the
    score to read (`validation_bleu`), every run's; by default `score_column`'s choice."""
    path = Path(path)
    table = path / "report.csv" if path.is_dir() else path
    if not table.is_file():
        raise BadReport(f"{table}: no such file (python -m research.report writes report.csv)")
    try:
        with table.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as e:
        raise BadReport(f"{table}: not a readable CSV file ({e})") from None
    if not rows:
        raise BadReport(f"{table}: no runs")
    missing = [c for c in REQUIRED if c not in rows[0]]
    if missing:
        raise BadReport(f"{table}: no column {', '.join(missing)}; is it a report.csv of python -m research.report?")
    metrics = sorted({r["metric"] for r in rows})
    if len(metrics) > 1:
        raise BadReport(f"{table}: runs scored by {' and '.join(metrics)}; one report holds one task")
    metric = metrics[0]
    try:
        tasks.by_metric(metric)
    except ValueError as e:
        raise BadReport(f"{table}: {e}") from None
    if column is None:
        column = score_column(table, rows, metric)
    elif not all(r.get(column) for r in rows):
        raise BadReport(f"{table}: not every run has a {column} score")
    parsed = []
    for r in rows:
        where = f"{table}, run {r.get('run', '?')}"
        parsed.append({"encoder": r["encoder"], "decoder": r["decoder"], "seed": _seed(r["seed"], where),
                       "_overrides": r["overrides"].split(), "score": _float(r[column], f"{where}, {column}"),
                       "flops": _float(r["train_flops"], f"{where}, train_flops") if r.get("train_flops") else None,
                       "run": r.get("run", "?"), "code": r.get("code") or None})  # None: report.csv predates it
    flops = _budget(table, parsed, flops)
    name = table.parent.name if table.name == "report.csv" else str(table)
    named = [dict(r) for r in parsed]
    runs.architectures(named)  # as its own report names them; `together` names them again across the sweeps
    return _named(Sweep(name, table, flops, metric, column, tuple(parsed), {}, _baselines(table, rows, column, metric)),
                  named)


def _baselines(table: Path, rows: list[dict], column: str, metric: str) -> dict[str, float]:
    """The baselines' scores on the split that `column` scores: from the columns <split>_baseline_<name>_<metric>,
    where a name has no underscore (tfidf, lookup), so that a column that only ends like the metric (for
    micro_f1, ..._baseline_tfidf_label_micro_f1) is not taken for a baseline called tfidf_label. A baseline is
    fitted once per sweep, so every run must record the same score."""
    split = column.split("_", 1)[0]
    prefix, suffix = f"{split}_baseline_", f"_{metric}"
    out = {}
    for key in rows[0]:
        name = key[len(prefix):-len(suffix)] if key.startswith(prefix) and key.endswith(suffix) else ""
        if not name or "_" in name:
            continue
        values = {}
        for r in rows:
            where = f"{table}, run {r.get('run', '?')}, {key}"
            if not r.get(key):
                raise BadReport(f"{where}: empty, while other runs record the {name} baseline")
            values[r.get("run", "?")] = _float(r[key], where)
        (low_run, low), (high_run, high) = min(values.items(), key=lambda kv: kv[1]), max(values.items(), key=lambda kv: kv[1])
        if not math.isclose(low, high, rel_tol=1e-9, abs_tol=1e-12):
            raise BadReport(f"{table}, {key}: run {low_run} records {low!r} and run {high_run} {high!r}; a baseline is "
                            "fitted once per sweep, so these runs saw different data")
        out[name] = low
    return out


def _named(sweep: Sweep, named: list[dict]) -> Sweep:
    """The sweep with its scores by architecture, from its runs' rows as `runs.architectures` named them."""
    scores: dict[str, dict[int, float]] = {}
    for r in named:
        seeds = scores.setdefault(r["architecture"], {})
        if r["seed"] in seeds:
            raise BadReport(f"{sweep.path}: {r['architecture']} has two runs of seed {r['seed']}")
        seeds[r["seed"]] = r["score"]
    return dataclasses.replace(sweep, scores=scores)


def tells_sweeps_apart(override: str) -> bool:
    """Overrides that tell one sweep of a comparison from another rather than one architecture from another:
    the experiment file and the budget."""
    key = sweep.override_key(override)
    return key in BUDGET_KEYS or key == "experiment"


def score_column(table: Path, rows: list[dict], metric: str) -> str:
    """test_<metric> where every run has a test score, else validation_<metric> (as research.report decides)."""
    for column in (f"test_{metric}", f"validation_{metric}"):
        if all(r.get(column) for r in rows):
            return column
    raise BadReport(f"{table}: not every run has a test_{metric} or a validation_{metric} score")


def _seed(text: str, where: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise BadReport(f"{where}: seed {text!r} is not a whole number") from None


def _budget(table: Path, rows: list[dict], stated: float | None) -> float:
    recorded = [r for r in rows if r["flops"] is not None]
    if stated is not None and stated <= 0:
        raise BadReport(f"{table}: a budget of {stated:g} FLOPs")
    spent_nothing = next((r for r in recorded if r["flops"] <= 0), None)
    if spent_nothing is not None:
        raise BadReport(f"{table}, run {spent_nothing['run']}: train_flops {spent_nothing['flops']:g} (a run spends some)")
    if len(recorded) < len(rows):
        if stated is None:
            raise BadReport(f"{table} does not record every run's train_flops (a report written before the column "
                            f"existed): regenerate it with python -m research.report from its runs, or state its "
                            f"budget as {table.parent}@FLOPS")
        return stated
    low, high = min(recorded, key=lambda r: r["flops"]), max(recorded, key=lambda r: r["flops"])
    if high["flops"] > low["flops"] * (1 + SAME_BUDGET):
        raise BadReport(f"{table}: run {low['run']} spent {low['flops']:.3g} training FLOPs and run {high['run']} "
                        f"{high['flops']:.3g}: not one FLOPs budget (trainer.budget=flops ends every run at the same one)")
    spent = statistics.fmean(r["flops"] for r in recorded)
    if stated is not None and abs(spent / stated - 1) > SAME_BUDGET:
        raise BadReport(f"{table}: its runs spent {spent:.3g} training FLOPs, not the {stated:g} stated")
    return spent


def together(sweeps: list[Sweep]) -> list[Sweep]:
    """The sweeps from the smallest budget up, once they are known to compare: one metric, scored on the same
    split, distinct budgets, and some architecture at two budgets or more."""
    if len(sweeps) < 2:
        raise BadReport("a comparison across budgets needs two reports or more")
    seen: set[Path] = set()
    for s in sweeps:
        if s.path.resolve() in seen:
            raise BadReport(f"{s.path} is given twice")
        seen.add(s.path.resolve())
    first = sweeps[0]
    for s in sweeps[1:]:
        if (s.metric, s.column) != (first.metric, first.column):
            raise BadReport(f"{s.path} is scored by {s.column}, {first.path} by {first.column}: not one comparison")
    ordered = sorted(sweeps, key=lambda s: s.flops)
    for a, b in zip(ordered, ordered[1:]):
        if b.flops <= a.flops * (1 + SAME_BUDGET):
            raise BadReport(f"{a.path} and {b.path} are at one budget ({a.flops:.3g} and {b.flops:.3g} FLOPs); "
                            "report them together with python -m research.report instead")
    # Named across the runs of all the sweeps: an override that every run of one sweep shares (so that its own
    # report leaves it out of the names) still tells its runs from another sweep's, where it varies.
    pooled = [[dict(r, _overrides=[o for o in r["_overrides"] if not tells_sweeps_apart(o)]) for r in s.runs] for s in ordered]
    runs.architectures([r for rows in pooled for r in rows])  # names every row in place
    ordered = [_named(s, rows) for s, rows in zip(ordered, pooled)]
    if not any(sum(arch in s.scores for s in ordered) > 1 for arch in {a for s in ordered for a in s.scores}):
        raise BadReport("no architecture is in two of these reports: nothing to compare across budgets ("
                        + "; ".join(f"{s.name}: {', '.join(sorted(s.scores))}" for s in ordered) + ")")
    return ordered


def lower_is_better(sweep: Sweep) -> bool:
    return tasks.by_metric(sweep.metric).lower_is_better


def ranking(sweep: Sweep, among: set[str] | None = None) -> list[str]:
    """The sweep's architectures (or those of them `among`) by mean score over seeds, the better first."""
    sign = 1.0 if lower_is_better(sweep) else -1.0
    archs = [a for a in sweep.scores if among is None or a in among]
    return sorted(archs, key=lambda a: (sign * statistics.fmean(sweep.scores[a].values()), a))


def leaders(sweeps: list[Sweep]) -> list[dict]:
    """Where the lead changes hands: for each pair of consecutive budgets, among the architectures both have,
    the best by mean at each when they differ, with the paired difference between the two at both budgets
    (the later leader minus the earlier; a mean's lead can be within noise, and the p-values say so)."""
    out = []
    for a, b in zip(sweeps, sweeps[1:]):
        both = set(a.scores) & set(b.scores)
        if len(both) < 2:
            continue
        first, then = ranking(a, both)[0], ranking(b, both)[0]
        if first != then:
            out.append({"from": a, "to": b, "before": first, "after": then,
                        "at_from": paired(a.scores[first], a.scores[then]), "at_to": paired(b.scores[first], b.scores[then])})
    return out


def paired(a: dict[int, float], b: dict[int, float]) -> Paired | None:
    """b - a over their common seeds; None where they share none."""
    seeds = tuple(sorted(set(a) & set(b)))
    if not seeds:
        return None
    diff = [b[s] - a[s] for s in seeds]
    interval = confidence.t_interval(diff)
    p = None
    if len(seeds) > 1 and statistics.stdev(diff) > 0:
        p = float(stats.ttest_rel([b[s] for s in seeds], [a[s] for s in seeds]).pvalue)
    return Paired(seeds, interval, p)


def changes(sweeps: list[Sweep]) -> list[dict]:
    """Each architecture's change of score from each budget to the next it has, and that change per doubling of
    FLOPs (the change over log2 of the budgets' ratio)."""
    out = []
    for arch in sorted({a for s in sweeps for a in s.scores}):
        have = [s for s in sweeps if arch in s.scores]
        for a, b in zip(have, have[1:]):
            found = paired(a.scores[arch], b.scores[arch])
            if found is not None:
                out.append({"architecture": arch, "from": a, "to": b, "change": found,
                            "per_doubling": found.interval.mean / math.log2(b.flops / a.flops)})
    return out


def reference(sweeps: list[Sweep]) -> str:
    """What the gaps are measured to: the best architecture at the largest budget."""
    return ranking(sweeps[-1])[0]


def margins(sweeps: list[Sweep]) -> list[dict]:
    """Each architecture's score minus each baseline's, at every budget where the report records that baseline:
    the mean over seeds, its 95% t interval, the p of a one-sample t-test against the baseline's one score (the
    seeds' spread only: the report's paired bootstrap over test sentences also counts the test set's sampling), and
    how many seeds do better than the baseline; `ahead`: whether the mean does (higher, or lower for perplexity)."""
    out = []
    sign = -1.0 if sweeps and lower_is_better(sweeps[0]) else 1.0
    for s in sweeps:
        for name, score in sorted(s.baselines.items()):
            for arch in ranking(s):
                found = paired({k: score for k in s.scores[arch]}, s.scores[arch])
                better = sum(sign * (v - score) > 0 for v in s.scores[arch].values())
                out.append({"architecture": arch, "baseline": name, "sweep": s, "margin": found, "better": better,
                            "ahead": sign * found.interval.mean > 0})
    return out


def crossings(found: list[dict]) -> list[dict]:
    """Where an architecture's mean passes a baseline (or falls back behind it) from one budget to the next it has
    with that baseline: `margins` rows `from` and `to` whose `ahead` differs."""
    out = []
    lines: dict[tuple[str, str], list[dict]] = {}
    for m in found:
        lines.setdefault((m["architecture"], m["baseline"]), []).append(m)
    for rows in lines.values():
        out += [{"from": a, "to": b} for a, b in zip(rows, rows[1:]) if a["ahead"] != b["ahead"]]
    return out


def gaps(sweeps: list[Sweep], ref: str) -> dict[str, list[dict]]:
    """Per architecture other than `ref`, at each budget both have: its score minus ref's, seed by seed; and,
    from the second budget on, how that gap moved since the previous budget with both (a difference in
    differences over the seeds all four runs share)."""
    out: dict[str, list[dict]] = {}
    for arch in sorted({a for s in sweeps for a in s.scores} - {ref}):
        previous = None
        for s in sweeps:
            if arch not in s.scores or ref not in s.scores:
                continue
            per_seed = {k: s.scores[arch][k] - s.scores[ref][k] for k in set(s.scores[arch]) & set(s.scores[ref])}
            if not per_seed:
                continue
            gap = paired({k: 0.0 for k in per_seed}, per_seed)
            moved = paired(previous, per_seed) if previous is not None else None
            out.setdefault(arch, []).append({"sweep": s, "gap": gap, "moved": moved})
            previous = per_seed
    return out
