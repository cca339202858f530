"""What a sweep report decides with, from its runs' rows (`research.analysis.runs.collect`).

  * `scored_by`: the figure every architecture is judged on: the TEST metric
    when every run wrote eval_test.json, else the last validation (said so).
  * `intervals`: mean, std and 95% t interval over each architecture's seeds.
  * `significance`: paired tests of every architecture against the best one
    on the test set, each side the test hypotheses of ALL its seeds joined in
    seed order (the seeds every architecture has), so that one p-value speaks
    for the architecture rather than for one seed (`significance.py`).
  * `baselines`: the task's untrained systems (summarization: the lead
    baselines) and fitted ones (classification: TF-IDF + logistic regression
    on the same training split) on the same test set, each tested against
    the best the same way.
  * `compute`: each run's validation curve against cumulative training FLOPs
    and seconds (metrics.jsonl), the Pareto frontier of the architectures'
    final (mean cost, mean score), and the best architecture at a few budgets.

Bad input stops with a message naming the run: runs of different tasks, or
test outputs of different test sets, in one report.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from research import tasks
from research.analysis import confidence, frontier

GROUP_NOT_DIFFERENT = 0.05  # p >= this: not significantly different from the best


class MixedSweep(ValueError):
    """Runs that cannot be compared in one report."""


def check_comparable(root: Path, rows: list[dict]) -> None:
    """One task metric and one test set across the runs, or MixedSweep naming the odd run."""
    first = rows[0]
    for r in rows[1:]:
        if r["metric"] != first["metric"]:
            raise MixedSweep(f"{root / r['run']}: scored by {r['metric']}, but {root / first['run']} by {first['metric']}: "
                             "runs of different tasks cannot share one report")
    tested = [(r, test_set(root / r["run"])) for r in rows]
    sets = {s for _, s in tested if s is not None}
    if len(sets) > 1:
        a, b = [next(r for r, s in tested if s == x) for x in sorted(sets)[:2]]
        raise MixedSweep(f"{root / a['run']} and {root / b['run']} were tested on different test sets "
                         f"({sorted(sets)[0]} and {sorted(sets)[1]}): one report compares one test set")


def test_set(run: Path) -> tuple | None:
    path = run / "eval_test.json"
    if not path.exists():
        return None
    e = json.loads(path.read_text())
    return e.get("data"), e.get("split"), e.get("examples")


def scored_by(rows: list[dict]) -> tuple[str, str]:
    """(column, what it is): `test_<metric>` when every run has one, else `validation_<metric>`."""
    metric = rows[0]["metric"]
    if all(isinstance(r.get(f"test_{metric}"), float) for r in rows):
        return f"test_{metric}", f"test {metric} (eval_test.json of every run)"
    return f"validation_{metric}", f"validation {metric} at the last step (not every run has test output)"


def intervals(rows: list[dict], column: str) -> dict[str, confidence.Interval]:
    groups: dict[str, list[float]] = {}
    for r in rows:
        if isinstance(r.get(column), float):
            groups.setdefault(r["architecture"], []).append(r[column])
    return {arch: confidence.t_interval(v) for arch, v in groups.items()}


def read_test_hypotheses(run: Path) -> list[str]:
    """A run's hyps_test.txt, one hypothesis per line (what the paired tests and the repetition count read)."""
    return (run / "hyps_test.txt").read_text(encoding="utf-8").split("\n")[:-1]


def significance(root: Path, rows: list[dict], best: str, references) -> dict[str, dict[str, float]]:
    """p-values of every architecture against `best` (see the module docstring); {} without test output.

    `references(run_dir)` -> the test references of that run's data (corpus order).
    """
    if not all((root / r["run"] / "hyps_test.txt").exists() for r in rows):
        return {}
    by_arch: dict[str, dict[int, Path]] = {}
    for r in rows:
        by_arch.setdefault(r["architecture"], {})[int(r["seed"])] = root / r["run"]
    seeds = sorted(set.intersection(*(set(s) for s in by_arch.values())))
    if not seeds:
        return {}
    refs = references(by_arch[best][seeds[0]])
    joined = {arch: [h for s in seeds for h in read_test_hypotheses(runs[s])] for arch, runs in by_arch.items()}
    for arch, hyps in joined.items():
        if len(hyps) != len(refs) * len(seeds):
            raise MixedSweep(f"{arch}: {len(hyps)} test hypotheses over {len(seeds)} seeds for {len(refs)} references")
    pooled_refs = list(refs) * len(seeds)
    others = {a: h for a, h in joined.items() if a != best}
    test = tasks.by_metric(rows[0]["metric"]).paired_test
    out = test(joined[best], others, pooled_refs)
    out["_seeds"] = {"seeds": seeds}
    return out


def baselines(root: Path, rows: list[dict], best: str, seeds: list[int], splits) -> dict[str, dict]:
    """The task's baselines scored on the test set and tested against `best`; {} without them: the untrained
    ones (`Task.baselines`) and those fitted on the training split by the runs (classification's TF-IDF: its
    test predictions from the best architecture's first seed's baseline.json, `tasks.baseline_hypotheses`).

    `splits(run_dir)` -> (test sources, test references, training targets, data config) of that run's data.
    Each baseline's hypotheses are repeated once per seed so that they pair with the best's joined seeds,
    as in `significance`: the same test, the same pooled references.

    Returns {name: {"scores": the task's scores, "p": {test name: p-value}}}.
    """
    task = tasks.by_metric(rows[0]["metric"])
    if not seeds:
        return {}
    runs = {int(r["seed"]): root / r["run"] for r in rows if r["architecture"] == best}
    if not all((runs[s] / "hyps_test.txt").exists() for s in seeds):
        return {}
    fitted = tasks.baseline_hypotheses(runs[seeds[0]], "test")
    if task.baselines is None and not fitted:
        return {}
    sources, refs, train_targets, data = splits(runs[seeds[0]])
    systems = {**(task.baselines(sources, train_targets) if task.baselines else {}), **fitted}
    for name, hyps in systems.items():
        if len(hyps) != len(refs):
            raise MixedSweep(f"{runs[seeds[0]]}: baseline {name} has {len(hyps)} test predictions for "
                             f"{len(refs)} references")
    joined = [h for s in seeds for h in read_test_hypotheses(runs[s])]
    p_values = task.paired_test(joined, {n: list(h) * len(seeds) for n, h in systems.items()}, list(refs) * len(seeds))
    return {n: {"scores": task.score(h, refs, data), "p": p_values[n]} for n, h in systems.items()}


def not_different(p_values: dict[str, float]) -> bool:
    """In the best's group: no test of this architecture against the best reaches p < 0.05."""
    return all(p >= GROUP_NOT_DIFFERENT for p in p_values.values())


def holm(p_values: dict) -> dict:
    """Holm's step-down adjusted p-values of a family of tests (key -> p), each at most 1.

    Why: a sweep of nine architectures tests eight against the best, each by two tests on two metrics; at
    p < 0.05 apiece, some of 32 tests will pass by chance. Rejecting where the adjusted p < 0.05 keeps the chance of
    any false rejection in the family at 5% whatever the tests' dependence (Holm 1979), and rejects at least
    what Bonferroni does. With p sorted ascending over m tests, the i-th (from 1) is adjusted to
    max over j <= i of min(1, (m - j + 1) p_j)."""
    order = sorted(p_values, key=lambda k: p_values[k])
    m, out, running = len(order), {}, 0.0
    for j, key in enumerate(order):
        running = max(running, min(1.0, (m - j) * p_values[key]))
        out[key] = running
    return out


def compute(rows: list[dict], column: str) -> dict:
    """Curves against FLOPs and seconds, the frontier of final points, and the best at four FLOPs budgets
    (in the metric's better direction, `Task.lower_is_better`)."""
    metric = column.split("_", 1)[1]
    lower = tasks.by_metric(rows[0]["metric"]).lower_is_better if rows else False
    curves = {"flops": {}, "train_seconds": {}}
    finals: dict[str, dict[str, list[float]]] = {}
    for r in rows:
        points = [c for c in r["_curves"] if "flops" in c and metric in c]
        for cost in curves:
            curves[cost].setdefault(r["architecture"], []).append([(c[cost], c[metric]) for c in points])
        f = finals.setdefault(r["architecture"], {"flops": [], "train_seconds": [], "score": []})
        if points and isinstance(r.get(column), float):
            f["flops"].append(points[-1]["flops"])
            f["train_seconds"].append(points[-1]["train_seconds"])
            f["score"].append(r[column])
    means = {a: {k: sum(v) / len(v) for k, v in f.items()} for a, f in finals.items() if f["score"]}
    archs = sorted(means)
    frontiers = {cost: [archs[i] for i in frontier.pareto([(means[a][cost], means[a]["score"]) for a in archs],
                                                          lower_is_better=lower)]
                 for cost in curves}
    top = max((c[-1][0] for runs in curves["flops"].values() for c in runs if c), default=0.0)
    budgets = [top * q for q in (0.25, 0.5, 0.75, 1.0)] if top else []
    return {"curves": curves, "means": means, "frontier": frontiers,
            "best_at": frontier.best_at(curves["flops"], budgets, lower_is_better=lower)}


def finite(x) -> bool:
    return isinstance(x, float) and math.isfinite(x)
