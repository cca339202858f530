"""report.csv files written the way `python -m research.report` writes them, for the readers of recorded reports
(`research.scaling`, `research.tune`)."""
from __future__ import annotations

import csv


def report(folder, runs, flops=1e12, metric="bleu", drop=(), extra=None):
    """A report.csv in `folder`: runs are (encoder, decoder, seed, test score, *other overrides), the validation
    score one less;
    each run spent `flops` (a list: one per run; None: the column left empty, as for a run whose summary
    predates it); `drop`: columns left out (or given anew in `extra`); `extra`: more columns, each a value for every run or a list of one per
    run (as the baselines' `test_baseline_<name>_<metric>`)."""
    folder.mkdir(parents=True, exist_ok=True)
    spent = flops if isinstance(flops, list) else [flops] * len(runs)
    columns = {k: v if isinstance(v, list) else [v] * len(runs) for k, v in (extra or {}).items()}
    header = [c for c in ("run", "encoder", "decoder", "seed", "params", "steps", "train_flops", "metric",
                          f"validation_{metric}", f"test_{metric}") if c not in drop]
    header += [c for c in columns if c not in header] + [c for c in ("overrides",) if c not in drop]
    with (folder / "report.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=header, extrasaction="ignore")
        w.writeheader()
        for k, ((enc, dec, seed, score, *extra), used) in enumerate(zip(runs, spent)):
            overrides = " ".join([f"+experiment/budget/encoder={enc}", f"+experiment/budget/decoder={dec}",
                                  f"trainer.seed={seed}", *extra, "+experiment=x"])
            w.writerow({"run": str(k), "encoder": enc, "decoder": dec, "seed": seed, "params": 10, "steps": 5,
                        "train_flops": "" if used is None else used, "metric": metric, f"validation_{metric}": score - 1,
                        f"test_{metric}": score, "overrides": overrides, **{c: v[k] for c, v in columns.items()}})
    return folder


def grid(scores: dict[str, list[float]]) -> list[tuple]:
    """{"cnn+cnn": [seed 0, seed 1, ...]} -> the runs of `report`."""
    return [(*arch.split("+"), seed, v) for arch, vs in scores.items() for seed, v in enumerate(vs)]
