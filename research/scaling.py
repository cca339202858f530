"""`python -m research.scaling REPORT[@FLOPS] REPORT[@FLOPS] ... --out DIR`: one comparison across training budgets.

Each REPORT is a folder that `python -m research.report` wrote (or its report.csv) for a sweep of the same
comparison at another FLOPs budget: compare_translation_small, _longer and _x4 are one grid at 8.2e12, 1.64e13
and 3.28e13 FLOPs. A report written before report.csv recorded `train_flops` needs its budget stated after an @
(experiments/results/compare_translation_small@8.2e12). Writes into --out:

  scaling.md    the score of every architecture at every budget (mean, std and 95% t interval over seeds, rank);
                where the lead changes hands; each one's change from one budget to the next, and per doubling of
                FLOPs; and its gap to the best architecture at the largest budget, at each budget and how it
                moved between them; all paired by seed (research/analysis/budgets.py says why and how); and,
                where report.csv records the task's baselines, every architecture's margin over each at each budget
  scaling.csv   one row per architecture and budget: runs, seeds, mean, std, interval, rank
  scaling.png   the score against training FLOPs, every run and each architecture's mean with its interval, and
                the baselines as dashed lines
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from research import console
from research.analysis import budgets, confidence, plots, tables
from research.analysis.runs import write_csv

STATED = re.compile(r"^(?P<path>.+)@(?P<flops>[0-9.][^@/]*)$")  # @ and a number: a stated budget


def parse(arg: str) -> tuple[Path, float | None]:
    """REPORT or REPORT@FLOPS -> (path, stated budget or None); a budget that is no number is refused."""
    found = STATED.match(arg)
    if not found:
        return Path(arg), None
    try:
        return Path(found["path"]), float(found["flops"])
    except ValueError:
        raise budgets.BadReport(f"{arg}: {found['flops']!r} after the @ is not a number of FLOPs") from None


def places(sweeps: list[budgets.Sweep]) -> int:
    """Decimal places for every score and difference of scaling.md (tables.places over scores and baselines)."""
    return tables.places([v for s in sweeps for seeds in s.scores.values() for v in seeds.values()]
                         + [v for s in sweeps for v in s.baselines.values()])


def _mean_std(i: confidence.Interval, d: int) -> str:
    return f"{i.mean:.{d}f}" + ("" if i.std is None else f" ± {i.std:.{d}f}")


def order(sweeps: list[budgets.Sweep]) -> list[str]:
    """Every architecture: those at the largest budget first, in its order; then those last seen at the next
    largest, in its order; and so on."""
    last = {a: max(k for k, s in enumerate(sweeps) if a in s.scores) for s in sweeps for a in s.scores}
    return sorted(last, key=lambda a: (-last[a], budgets.ranking(sweeps[last[a]]).index(a)))


def rows(sweeps: list[budgets.Sweep]) -> list[dict]:
    """scaling.csv: one row per architecture and budget."""
    out = []
    for s in sweeps:
        for rank, arch in enumerate(budgets.ranking(s), 1):
            i = confidence.t_interval(list(s.scores[arch].values()))
            out.append({"architecture": arch, "report": s.name, "train_flops": s.flops, "runs": i.n,
                        "seeds": " ".join(map(str, sorted(s.scores[arch]))), "mean": i.mean, "std": i.std,
                        "ci_low": i.low, "ci_high": i.high, "rank": rank})
    return out


def score_lines(sweeps: list[budgets.Sweep], archs: list[str], d: int) -> list[str]:
    lines = ["## Score at each budget", "", "Mean ± standard deviation over seeds, 95% t interval, and rank at that "
             "budget; each report's own report.md holds its tests on the test hypotheses.", ""]
    body = []
    for arch in archs:
        cells = []
        for s in sweeps:
            i = confidence.t_interval(list(s.scores[arch].values())) if arch in s.scores else None
            cells.append("" if i is None else f"{_mean_std(i, d)} {tables.interval(i.low, i.high, d)} "
                         f"#{budgets.ranking(s).index(arch) + 1} of {len(s.scores)} (n={i.n})")
        body.append([arch, *cells])
    return lines + [tables.table(["architecture", *[f"{s.flops:.3g} FLOPs ({s.name})" for s in sweeps]], body), ""]


def leader_lines(sweeps: list[budgets.Sweep], d: int) -> list[str]:
    changed = budgets.leaders(sweeps)
    if not changed:
        return ["Among the architectures that two consecutive budgets share, the best by mean is the same at both "
                f"throughout; at the largest budget it is {budgets.ranking(sweeps[-1])[0]}.", ""]
    lines = ["The lead changes hands (best by mean among the architectures both budgets have; the difference is "
             "the later leader minus the earlier, paired by seed, at each budget):", ""]
    for c in changed:
        at = [f"{p.interval.mean:+.{d}f} (p {tables.p_value(p.p) or 'n/a'}) at {s.flops:.3g}"
              for p, s in ((c["at_from"], c["from"]), (c["at_to"], c["to"]))]
        lines.append(f"- {c['before']} at {c['from'].flops:.3g}, {c['after']} at {c['to'].flops:.3g}: " + ", ".join(at))
    return lines + [""]


def change_lines(sweeps: list[budgets.Sweep], lower: bool, d: int) -> list[str]:
    lines = ["## Change from one budget to the next", "", "The later score minus the earlier, seed by seed (a seed "
             "starts from the same weights and data order at every budget), for the budgets an architecture has "
             f"one after the other; p: paired t over those seeds. {'Negative' if lower else 'Positive'} is better. "
             f"Per doubling: the change over log2 of the two budgets' ratio. {HOLM}", ""]
    found = budgets.changes(sweeps)
    adjusted = tables.holm_cells([c["change"].p for c in found])
    body = [[c["architecture"], f"{c['from'].flops:.3g} → {c['to'].flops:.3g}", " ".join(map(str, c["change"].seeds)),
             _mean_std(c["change"].interval, d), tables.interval(c["change"].interval.low, c["change"].interval.high, d),
             tables.p_value(c["change"].p), adjusted[k], f"{c['per_doubling']:+.{d}f}"] for k, c in enumerate(found)]
    return lines + [tables.table(["architecture", "FLOPs", "seeds", "change, mean ± std", "95% CI", "p", "p, Holm",
                                  "per doubling"], body), ""]


HOLM = ("p, Holm: the table's p-values adjusted as one family by Holm's step-down procedure, which holds the chance "
        "of any false difference among them at 5%.")


def gap_lines(sweeps: list[budgets.Sweep], archs: list[str], lower: bool, d: int) -> list[str]:
    ref = budgets.reference(sweeps)
    lines = [f"## Gap to {ref}", "", f"Each architecture's score minus {ref}'s (the best at the largest budget), seed "
             "by seed, at each budget; p: paired t of the two. **Moved**: how that gap changed since the previous "
             f"budget with both, over the seeds all four runs share ({'negative' if lower else 'positive'}: closer "
             f"to or further ahead of {ref}). {HOLM}", ""]
    found = [(arch, g) for arch, gs in sorted(budgets.gaps(sweeps, ref).items(), key=lambda kv: archs.index(kv[0]))
             for g in gs]
    # one family: every gap and every move the table tests
    adjusted = tables.holm_cells([g["gap"].p for _, g in found]
                                 + [None if g["moved"] is None else g["moved"].p for _, g in found])
    body = []
    for k, (arch, g) in enumerate(found):
        gap, moved = g["gap"].interval, g["moved"]
        body.append([arch, f"{g['sweep'].flops:.3g}", " ".join(map(str, g["gap"].seeds)), f"{gap.mean:+.{d}f}",
                     tables.interval(gap.low, gap.high, d), tables.p_value(g["gap"].p), adjusted[k],
                     "" if moved is None else f"{moved.interval.mean:+.{d}f}",
                     "" if moved is None else tables.interval(moved.interval.low, moved.interval.high, d),
                     "" if moved is None else tables.p_value(moved.p), adjusted[len(found) + k]])
    return lines + [tables.table(["architecture", "FLOPs", "seeds", "gap", "95% CI", "p", "p, Holm", "moved", "95% CI",
                                  "p", "p, Holm"], body), ""]


def margin_lines(sweeps: list[budgets.Sweep], archs: list[str], lower: bool, d: int) -> list[str]:
    found = budgets.margins(sweeps)
    if not found:
        return []
    names = sorted({m["baseline"] for m in found})
    lines = ["## Against the baselines", "", "The task's baselines need no training budget; each report.csv records "
             "their scores on the same split. Margin: an architecture's score minus the baseline's "
             f"({'negative' if lower else 'positive'}: better than it), mean over seeds and 95% t interval; p: "
             "one-sample t over the seeds against the baseline's score, which counts the seeds' spread but not the "
             "test set's sampling (each report.md's paired test over sentences counts both). Seeds better: how many "
             f"runs beat it. {HOLM}", ""]
    lines += [tables.table(["baseline", *[f"{s.flops:.3g} FLOPs ({s.name})" for s in sweeps]],
                           [[n, *[f"{s.baselines[n]:.{d}f}" if n in s.baselines else "" for s in sweeps]]
                            for n in names]), ""]
    crossed = budgets.crossings(found)
    if crossed:
        lines += [f"- {c['to']['architecture']} {'passes' if c['to']['ahead'] else 'falls behind'} "
                  f"{c['to']['baseline']} between {c['from']['sweep'].flops:.3g} and {c['to']['sweep'].flops:.3g} "
                  f"FLOPs: margin {c['from']['margin'].interval.mean:+.{d}f}, then "
                  f"{c['to']['margin'].interval.mean:+.{d}f}" for c in crossed]
    else:
        lines.append("No architecture's mean passes a baseline, or falls behind one, from one budget to the next.")
    found = sorted(found, key=lambda m: (archs.index(m["architecture"]), m["baseline"], m["sweep"].flops))
    adjusted = tables.holm_cells([m["margin"].p for m in found])
    body = [[m["architecture"], m["baseline"], f"{m['sweep'].flops:.3g}", " ".join(map(str, m["margin"].seeds)),
             f"{m['margin'].interval.mean:+.{d}f}",
             tables.interval(m["margin"].interval.low, m["margin"].interval.high, d), tables.p_value(m["margin"].p),
             adjusted[k], f"{m['better']} of {len(m['margin'].seeds)}"] for k, m in enumerate(found)]
    return lines + ["", tables.table(["architecture", "baseline", "FLOPs", "seeds", "margin", "95% CI", "p", "p, Holm",
                                      "seeds better"], body), ""]


def markdown(sweeps: list[budgets.Sweep], command: str) -> str:
    lower = budgets.lower_is_better(sweeps[0])
    archs = order(sweeps)
    lines = ["# Across budgets: " + ", ".join(s.name for s in sweeps), "",
             f"{len(sweeps)} reports of one comparison, scored by **{sweeps[0].column.replace('_', ' ')}** "
             f"({'lower' if lower else 'higher'} is better). Each sits at its runs' mean training FLOPs, or at the "
             "budget stated after its @ where its report.csv does not record them. Command:", "", f"    {command}", ""]
    d = places(sweeps)
    lines += score_lines(sweeps, archs, d) + leader_lines(sweeps, d) + change_lines(sweeps, lower, d)
    lines += gap_lines(sweeps, archs, lower, d) + margin_lines(sweeps, archs, lower, d) + ["![scaling.png](scaling.png)", ""]
    return "\n".join(lines)


def curves(sweeps: list[budgets.Sweep]) -> dict[str, list[tuple[float, list[float], confidence.Interval]]]:
    """What scaling.png draws: per architecture, (FLOPs, its runs' scores, their interval) at each budget it has."""
    return {a: [(s.flops, list(s.scores[a].values()), confidence.t_interval(list(s.scores[a].values())))
                for s in sweeps if a in s.scores] for a in sorted({a for s in sweeps for a in s.scores})}


def baseline_curves(sweeps: list[budgets.Sweep]) -> dict[str, list[tuple[float, float]]]:
    """What scaling.png draws dashed: per baseline, (FLOPs, its score) at each budget whose report records it."""
    return {n: [(s.flops, s.baselines[n]) for s in sweeps if n in s.baselines]
            for n in sorted({n for s in sweeps for n in s.baselines})}


def main(argv: list[str] | None = None) -> int:
    console.setup_logging()
    p = argparse.ArgumentParser(prog="python -m research.scaling", description=__doc__.split("\n\n")[0])
    p.add_argument("reports", nargs="+", help="report folders (or report.csv files), each optionally REPORT@FLOPS")
    p.add_argument("--out", type=Path, required=True, help="where to write scaling.md, scaling.csv and scaling.png")
    args = p.parse_args(argv)
    try:
        sweeps = budgets.together([budgets.read(*parse(a)) for a in args.reports])
    except budgets.BadReport as e:
        raise SystemExit(f"error: {e}") from None
    console.out_folder(args.out)
    command = "python -m research.scaling " + " ".join(args.reports) + f" --out {args.out}"
    table = rows(sweeps)
    write_csv(args.out / "scaling.csv", table, list(table[0]))
    plots.budget_plot(curves(sweeps), [s.flops for s in sweeps], sweeps[0].column, args.out / "scaling.png",
                      baseline_curves(sweeps))
    (args.out / "scaling.md").write_text(markdown(sweeps, command))
    print(f"{len(sweeps)} budgets, {len({r['architecture'] for r in table})} architectures -> {args.out / 'scaling.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
