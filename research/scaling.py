"""`python -m research.scaling REPORT[@FLOPS] REPORT[@FLOPS] ... --out DIR`: one comparison across training budgets.

Each REPORT is a folder that `python -m research.report` wrote (or its report.csv) for a sweep of the same
comparison at another FLOPs budget: compare_translation_small, _longer and _x4 are one grid at 8.2e12, 1.64e13
and 3.28e13 FLOPs. A report written before report.csv recorded `train_flops` needs its budget stated after an @
(experiments/results/compare_translation_small@8.2e12). Writes into --out:

  scaling.md    the score of every architecture at every budget (mean, std and 95% t interval over seeds, rank);
                each one's change from one budget to the next, and per doubling of FLOPs; and its gap to the
                best architecture at the largest budget, at each budget and how it moved between them; all
                paired by seed (research/analysis/budgets.py says why and how)
  scaling.csv   one row per architecture and budget: runs, seeds, mean, std, interval, rank
  scaling.png   the score against training FLOPs, every run and each architecture's mean with its interval
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from research import console
from research.analysis import budgets, confidence, plots
from research.analysis.runs import write_csv

STATED = re.compile(r"^(?P<path>.+)@(?P<flops>[0-9.]+(?:[eE][+-]?[0-9]+)?)$")


def parse(arg: str) -> tuple[Path, float | None]:
    """REPORT or REPORT@FLOPS -> (path, stated budget or None)."""
    found = STATED.match(arg)
    return (Path(found["path"]), float(found["flops"])) if found else (Path(arg), None)


def _num(x: float | None, digits: int = 2) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def _p(x: float | None) -> str:
    return "" if x is None else ("< 0.0001" if x < 0.0001 else f"{x:.4f}")


def _ci(i) -> str:
    return "" if i.low is None else f"[{i.low:.2f}, {i.high:.2f}]"


def _table(header: list[str], body: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|",
            *["| " + " | ".join(row) + " |" for row in body]]


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


def markdown(sweeps: list[budgets.Sweep], command: str) -> str:
    metric = sweeps[0].column.replace("_", " ")
    lower = budgets.lower_is_better(sweeps[0])
    # Those at the largest budget first, in its order; then those last seen at the next largest, in its order; ...
    last = {a: max(k for k, s in enumerate(sweeps) if a in s.scores) for s in sweeps for a in s.scores}
    archs = sorted(last, key=lambda a: (-last[a], budgets.ranking(sweeps[last[a]]).index(a)))
    lines = ["# Across budgets: " + ", ".join(s.name for s in sweeps), "",
             f"{len(sweeps)} reports of one comparison, scored by **{metric}** ({'lower' if lower else 'higher'} is "
             f"better), placed at their runs' training FLOPs. Command:", "", f"    {command}", ""]
    lines += ["## Score at each budget", "", "Mean ± standard deviation over seeds, 95% t interval, and rank at that "
              "budget; each report's own report.md holds its tests on the test hypotheses.", ""]
    header = ["architecture", *[f"{s.flops:.3g} FLOPs ({s.name})" for s in sweeps]]
    body = []
    for arch in archs:
        cells = []
        for s in sweeps:
            if arch not in s.scores:
                cells.append("")
                continue
            i = confidence.t_interval(list(s.scores[arch].values()))
            cells.append(f"{i.mean:.2f}" + ("" if i.std is None else f" ± {i.std:.2f}") + f" {_ci(i)} "
                         f"#{budgets.ranking(s).index(arch) + 1} of {len(s.scores)} (n={i.n})")
        body.append([arch, *cells])
    lines += _table(header, body) + [""]
    flips = [(a, b) for a, b in zip(sweeps, sweeps[1:]) if budgets.ranking(a)[0] != budgets.ranking(b)[0]]
    lines += [("The best architecture changes with the budget: " + "; ".join(
        f"{budgets.ranking(a)[0]} at {a.flops:.3g}, {budgets.ranking(b)[0]} at {b.flops:.3g}" for a, b in flips))
        if flips else f"The best architecture is the same at every budget: {budgets.ranking(sweeps[-1])[0]}.", ""]
    lines += ["## Change from one budget to the next", "", "The later score minus the earlier, seed by seed (a seed "
              "starts from the same weights and data order at every budget); p: paired t over those seeds.", ""]
    body = [[c["architecture"], f"{c['from'].flops:.3g} → {c['to'].flops:.3g}",
             " ".join(map(str, c["change"].seeds)), _num(c["change"].interval.mean) + (
                 "" if c["change"].interval.std is None else f" ± {c['change'].interval.std:.2f}"),
             _ci(c["change"].interval), _p(c["change"].p), f"{c['per_doubling']:+.2f}"] for c in budgets.changes(sweeps)]
    lines += _table(["architecture", "FLOPs", "seeds", "change, mean ± std", "95% CI", "p", "per doubling"], body) + [""]
    ref = budgets.reference(sweeps)
    lines += [f"## Gap to {ref}", "", f"Each architecture's score minus {ref}'s (the best at the largest budget), seed "
              "by seed, at each budget; p: paired t of the two. **Moved**: how that gap changed since the previous "
              f"budget, over the seeds all four runs share ({'negative' if lower else 'positive'}: closer to or "
              f"further ahead of {ref}).", ""]
    body = []
    for arch, found in sorted(budgets.gaps(sweeps, ref).items(), key=lambda kv: archs.index(kv[0])):
        for g in found:
            gap, moved = g["gap"], g["moved"]
            body.append([arch, f"{g['sweep'].flops:.3g}", " ".join(map(str, gap.seeds)), f"{gap.interval.mean:+.2f}",
                         _ci(gap.interval), _p(gap.p), "" if moved is None else f"{moved.interval.mean:+.2f}",
                         "" if moved is None else _ci(moved.interval), "" if moved is None else _p(moved.p)])
    lines += _table(["architecture", "FLOPs", "seeds", "gap", "95% CI", "p", "moved", "95% CI", "p"], body) + [""]
    lines += ["![scaling.png](scaling.png)", ""]
    return "\n".join(lines)


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
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python -m research.scaling " + " ".join(args.reports) + f" --out {args.out}"
    table = rows(sweeps)
    write_csv(args.out / "scaling.csv", table, list(table[0]))
    plots.budget_plot(sweeps, args.out / "scaling.png")
    (args.out / "scaling.md").write_text(markdown(sweeps, command))
    print(f"{len(sweeps)} budgets, {len({r['architecture'] for r in table})} architectures -> {args.out / 'scaling.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
