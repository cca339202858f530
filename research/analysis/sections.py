"""report.md's sections, each a pure function of what `research.report` computed: rows, groups (the
per-architecture means of `runs.aggregate`) and verdicts (`research.report.decision`). `research.report`
composes them with what it reads from the sweep folder (commands, environment)."""
from __future__ import annotations

from research import tasks
from research.analysis import tables


def pm(g: dict, col: str, digits: int = 2) -> str:
    """A group's `col` as "mean ± std" (std only where there are two runs or more); "" without a mean."""
    m, s = g.get(f"{col}_mean"), g.get(f"{col}_std")
    return "" if m is None else tables.number(m, digits) + ("" if s is None else f" ± {tables.number(s, digits)}")


def length_lines(found: dict) -> list[str]:
    """The by-length table: one row per architecture, one column per target-length bucket."""
    b = found["boundary"]
    lines = ["## Sequence accuracy by target length", "",
             f"{found['split'].capitalize()} exact-match accuracy (%) per target-length bucket, mean over seeds"
             + (f"; training targets have at most {b} symbols (`accuracy_by_length.png` marks it)." if b is not None
                else "."), ""]
    header = ["architecture", *[f"{lo}-{hi}" + (" *" if b is not None and lo > b else "") for lo, hi in found["buckets"]]]
    order = sorted(found["mean"], key=lambda a: -sum(v or 0.0 for v in found["mean"][a]))
    lines += [tables.table(header, [[a, *[tables.number(v, 1) for v in found["mean"][a]]] for a in order])]
    if b is not None:
        lines += ["", "\\* longer than every training target."]
    return lines + [""]


def repetition_lines(found: dict) -> list[str]:
    """The repetition tables (`analysis/repetition.py`): per architecture, the share of test hypotheses that
    repeat a word n-gram, most first, beside the references' share; then the same by source group."""
    n = found["n"]
    lines = ["## Repetition", "", f"Test hypotheses that repeat a word {n}-gram (%), mean ± std over seeds; "
             f"the references: {100 * found['references']:.1f}%. More than the references means a decoder that "
             "says a phrase again, which the scores punish without naming.", ""]
    cell = lambda a: f"{100 * found['mean'][a]:.1f}" + ("" if found["std"][a] is None else f" ± {100 * found['std'][a]:.1f}")
    order = sorted(found["mean"], key=lambda a: -found["mean"][a])
    lines += [tables.table(["architecture", f"repeat a {n}-gram (%)"], [[a, cell(a)] for a in order]), ""]
    src = found.get("by_source")
    if src:
        groups = list(src["groups"])
        lines += ["By source: the same share (%) within each group of test examples (their number in brackets), "
                  "mean over seeds. A reference seldom repeats a phrase unless its source repeats a word, so a repeat "
                  "where the source repeats none is a loop:", ""]
        body = [["references", *[f"{100 * src['references'][g]:.1f}" for g in groups]]]
        body += [[a, *[f"{100 * src['mean'][a][g]:.1f}" for g in groups]] for a in order]
        lines += [tables.table(["architecture", *[f"{g} ({src['groups'][g]})" for g in groups]], body), ""]
    return lines


def decision_lines(groups: list[dict], verdict: dict, d: int = 2) -> list[str]:
    """The section that answers the question: by the scored figure, with intervals, p-values and the group;
    scores to `d` places (`tables.places`)."""
    lines = ["## The decision", "", *decision_table(groups, verdict, d)]
    lines += baseline_lines(verdict)
    comp = verdict["compute"]
    lines += ["## Quality against compute", "", "Validation curves against cumulative training FLOPs and seconds "
              "(`metric_vs_compute.png`); the Pareto frontier joins the architectures whose final mean score no other "
              "reaches for less: by FLOPs " + (", ".join(comp["frontier"]["flops"]) or "none") + "; by seconds "
              + (", ".join(comp["frontier"]["train_seconds"]) or "none") + ".", ""]
    if comp["best_at"]:
        lines += ["Best architecture at a FLOPs budget, read off the validation curves (the last validation within "
                  "the budget, mean over seeds; an architecture counts once all its runs have one):", ""]
        lines += [tables.table(["training FLOPs", "best", "its validation score", "architectures with a value"],
                         [[f"{b['budget']:.3g}", b["best"] or "", tables.number(b["value"], d), str(len(b["values"]))]
                          for b in comp["best_at"]]), ""]
    return lines


def decision_table(groups: list[dict], verdict: dict, d: int = 2) -> list[str]:
    """What is scored, the p-values' test and the table: architecture, runs, mean ± std, 95% CI, p-values, group."""
    column, what, best, p_cols = verdict["column"], verdict["what"], verdict["best"], verdict["p_columns"]
    lines = [f"Scored by **{what}**; mean, standard deviation and 95% confidence interval "
             f"(Student's t) over seeds. Best: **{best}**."]
    if p_cols:
        seeds = verdict["seeds"]
        tests = sum(1 for g in groups for c in p_cols if g.get(f"p_{c}") is not None)
        lines += ["", f"p-values: paired tests against {best} on the test set, each architecture's hypotheses of "
                  f"seeds {', '.join(map(str, seeds))} joined (the seeds every architecture has); "
                  + tasks.by_metric(verdict["metric"]).test_description
                  + " **Group**: not significantly different from the best (every p >= 0.05). "
                  f"**p, Holm**: the smallest of the architecture's p-values once all {tests} in the table are "
                  "adjusted as one family by Holm's step-down procedure, which holds the chance of any false "
                  "difference at 5%; **group, Holm**: that p >= 0.05."]
    else:
        lines += ["", "No p-values: one architecture, so none to test against the best." if len(groups) == 1
                  else "No p-values: not every run has test hypotheses (hyps_test.txt)."]
    holm = ["p, Holm", "group, Holm"] if p_cols else []
    header = ["architecture", "runs", "mean ± std", "95% CI", *[f"p {c.replace('_', ' ')}" for c in p_cols], "group",
              *holm]
    body = []
    for g in better_first(groups, column, verdict["metric"]):
        ci = tables.interval(g.get("ci_low"), g.get("ci_high"), d)
        ps = [("best" if g["architecture"] == best else tables.number(g.get(f"p_{c}"), 4)) for c in p_cols]
        cells = [g["architecture"], str(g["runs"]), pm(g, column, d), ci, *ps, "yes" if g.get("in_best_group") else ""]
        if holm:
            cells += ["best" if g["architecture"] == best else tables.number(g.get("holm_p"), 4),
                      "yes" if g.get("in_best_group_holm") else ""]
        body.append(cells)
    lines += ["", tables.table(header, body), ""]
    return lines


def better_first(groups: list[dict], column: str, metric: str) -> list[dict]:
    """Groups by their mean of `column`, the better first (highest, or lowest where the task's metric is
    lower-is-better: perplexity), those without a value last."""
    lower = tasks.by_metric(metric).lower_is_better
    key = lambda g: g.get(f"{column}_mean")
    return sorted(groups, key=lambda g: (key(g) is None, (key(g) if lower else -key(g)) if key(g) is not None else 0.0))


def baseline_lines(verdict: dict) -> list[str]:
    """The task's baselines on the same test set, each with the p-values of the best against it."""
    found = verdict.get("baselines") or {}
    if not found:
        return []
    metric, best = verdict["metric"], verdict["best"]
    names = sorted({k for b in found.values() for k, v in b["scores"].items()
                    if isinstance(v, float) and not k.endswith("_signature")})
    tests = sorted({t for b in found.values() for t in b["p"]})
    lines = ["### Baselines", "", f"The {tasks.by_metric(metric).name} task's baselines (systems that need no "
             "training, or a reference model fitted on the runs' own training split), scored on the same test set; "
             f"p: the same paired test of {best} (its seeds joined) against each."]
    digits = {k: tables.places([b["scores"].get(k) for b in found.values()]) for k in names}
    body = [[name, *[tables.number(b["scores"].get(k), digits[k]) for k in names],
             *[tables.number(b["p"].get(t), 4) for t in tests]] for name, b in found.items()]
    return lines + ["", tables.table(["baseline", *names, *[f"p {t.replace('_', ' ')}" for t in tests]], body), ""]


def tuned_lines(found: dict, d: int = 2) -> list[str]:
    """The section of `tuned`: what was chosen from what, then the decision table among the chosen."""
    keys, metric = " and ".join(found["keys"]), found["verdict"]["metric"]
    lines = [f"## Each architecture at its best {keys}", "",
             f"Within each architecture (its name without {keys}), the setting with the best mean validation "
             f"{metric} over seeds is chosen (in bold); the chosen settings are then compared on the test set, which "
             "the choice never reads. The validation means of the chosen are the best of several, so optimistic; "
             "the test scores below are not.", ""]
    body = []
    for c in found["choice"]:
        tried = "; ".join((f"**{s['setting']}**" if s["architecture"] == c["chosen"] else s["setting"])
                          + f" {tables.number(s['mean'], d) if s['mean'] is not None else 'none'} ({s['runs']} runs)"
                          for s in c["settings"])
        body.append([c["family"], tried])
    lines += [tables.table(["architecture", f"validation {metric} at each setting (mean over seeds)"], body), ""]
    lines += edge_lines({c["family"]: c["edges"] for c in found["choice"]})
    return lines + decision_table(found["groups"], found["verdict"], d)


def edge_lines(edges: dict[str, dict[str, str]]) -> list[str]:
    """A sentence naming each architecture whose chosen value of a numeric setting is the lowest or highest tried
    (`tuning.edge`), or none where every choice lies inside the values tried."""
    named = [f"{arch} (the {where} {key} tried)" for arch, found in edges.items() for key, where in found.items()]
    if not named:
        return []
    return ["Chosen at an edge of the values tried, so not bracketed: a better value may lie beyond it, and the "
            "comparison below holds for the values tried only. " + "; ".join(named) + ".", ""]
