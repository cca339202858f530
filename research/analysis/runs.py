"""A sweep's runs as rows: found on disk, read, named by architecture and grouped over seeds.

What `research/report.py` (the tables, plots and decision) and `research/analysis/decide.py` read a
sweep through. A run is a folder with `.hydra/config.yaml` (+ overrides.yaml), `summary.json` and
`metrics.jsonl`, and optionally `eval_test.json` from `python -m research.evaluate`. A row is flat: the
FIXED columns, `validation_<metric>` and `test_<metric>` scores, SPEED, the run's overrides and the code that
computed it (its manifest's commit; `research.tune` says when the runs it compares come from several); keys
starting with `_` (validation curves, override list) are for plots and naming, never written to CSV.
"""
from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path

from omegaconf import OmegaConf

from research import sweep
from research.training import metrics_log

# Overrides that repeat an architecture rather than define one, or only say how a job was launched
# (trainer.resume, research/sweep.py's NOT_NAMED: jobs first started by a resumed launch record it).
SEED_KEYS = ("trainer.seed", *sweep.NOT_NAMED)
FIXED = ("run", "encoder", "decoder", "seed", "params", "steps", "train_flops", "metric")
SPEED = ("tokens_per_s", "compile_s", "wall_s")
# Numbers in research.evaluate's eval_<split>.json that are not scores: what was evaluated, and how long it took.
EVAL_RECORDS = ("examples", "step", "wall_s", "truncated_to_model")


def find_runs(root: Path, exclude: Path | None = None) -> tuple[list[Path], list[Path]]:
    """(finished, incomplete) run directories under `root`, sorted by job number then path."""
    finished, incomplete = [], []
    for cfg in Path(root).rglob(".hydra/config.yaml"):
        run = cfg.parent.parent
        if exclude is not None and exclude.resolve() in run.resolve().parents:
            continue
        done = (run / "summary.json").exists() and (run / "metrics.jsonl").exists()
        (finished if done else incomplete).append(run)
    key = lambda p: (int(p.name) if p.name.isdigit() else math.inf, str(p))
    return sorted(finished, key=key), sorted(incomplete, key=key)


def _overrides(run: Path) -> list[str]:
    path = run / ".hydra" / "overrides.yaml"
    return [str(o) for o in OmegaConf.to_container(OmegaConf.load(path))] if path.exists() else []


def test_metrics(run: Path) -> dict:
    """The scores in the run's eval_test.json (as `research.evaluate.write` leaves it), or {} without one.

    The file is flat: scores (loss, perplexity, accuracy, BLEU/chrF or ROUGE) beside
    the evaluation's own records; only the scores are returned, as floats.
    """
    path = run / "eval_test.json"
    found = json.loads(path.read_text()) if path.exists() else {}
    return {k: float(v) for k, v in found.items()
            if k not in EVAL_RECORDS and isinstance(v, (int, float)) and not isinstance(v, bool)}


def train_flops(summary: dict) -> float | None:
    """The training FLOPs a run spent (research/models/flops.py's count, as its budget kept it), or None for a
    run whose summary predates that record. What `python -m research.scaling` places each sweep by."""
    spent = summary.get("budget", {}).get("spent", {}).get("flops")
    return None if spent is None else float(spent)


def collect(root: Path, run: Path) -> dict:
    summary = json.loads((run / "summary.json").read_text())
    row = {
        "run": str(run.relative_to(root)) if run != root else ".", "encoder": summary["encoder"],
        "decoder": summary["decoder"], "seed": summary["seed"], "params": summary["params"],
        "steps": summary["steps"], "train_flops": train_flops(summary), "metric": summary["metric"],
    }
    row.update({f"validation_{k}": float(v) for k, v in summary["validation"].items() if isinstance(v, (int, float))})
    row.update({f"test_{k}": v for k, v in test_metrics(run).items()})
    row.update({k: float(summary[k]) for k in SPEED if k in summary})
    if "train_target_len_max" in summary:  # sequence tasks: the longest training target
        row["train_target_len_max"] = int(summary["train_target_len_max"])
    row["overrides"] = " ".join(_overrides(run))
    row["code"] = code(run)
    row["_curves"] = [r for r in metrics_log.read(run) if r["split"] == "validation"]
    row["_overrides"] = _overrides(run)
    return row


def manifest(run: Path) -> dict | None:
    """The run's manifest.json (research/training/manifest.py writes it), None without one. Read here, not through
    that module, which imports jax: the report tools need none."""
    path = run / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else None


def code(run: Path) -> str:
    """The commit that computed the run, from its manifest.json, with "+dirty" for uncommitted changes; "" where
    the manifest records none."""
    git = (manifest(run) or {}).get("git", {})
    return (git.get("commit") or "") + ("+dirty" if git.get("commit") and git.get("dirty") else "")


def short_code(code: str) -> str:
    """A commit as `code` gives it, cut to the 7 characters git shows (keeping "+dirty")."""
    return code[:7] + ("+dirty" if code.endswith("+dirty") else "")


def architectures(rows: list[dict]) -> None:
    """Sets row["architecture"]: encoder+decoder (the one a model has, where the other is "none"), plus any
    other override that varies between runs. A component chosen as a named variant of its kind (the budget
    file `experiment/budget/params1m/encoder=rnn_1x167` of an rnn) is named by the variant, so that it is
    never confused with the kind's plain shape, in a report or across reports (`research.scaling`)."""
    common = set.intersection(*(set(r["_overrides"]) for r in rows)) if rows else set()
    for r in rows:
        extra = [o for o in r["_overrides"] if o not in common and not o.lstrip("+~").startswith(SEED_KEYS)
                 and not sweep.override_key(o).endswith(("encoder", "decoder"))]
        parts = [_component(r, side) for side in ("encoder", "decoder") if r[side] != "none"]  # a classifier: no decoder
        r["architecture"] = " ".join(["+".join(parts), *extra])


def _component(row: dict, side: str) -> str:
    """The run's encoder or decoder name, or the variant of it its overrides chose (`<name>_<variant>`)."""
    name = row[side]
    chosen = [o.split("=", 1)[1] for o in row["_overrides"] if "=" in o and sweep.override_key(o).endswith(side)]
    return next((v for v in chosen if v.startswith(f"{name}_")), name)


def columns(rows: list[dict]) -> list[str]:
    val = sorted({k for r in rows for k in r if k.startswith("validation_")})
    test = sorted({k for r in rows for k in r if k.startswith("test_")})
    return [*FIXED, *val, *test, *SPEED, "overrides", "code"]


def aggregate(rows: list[dict]) -> list[dict]:
    """Per architecture: runs, seeds, and mean/std (sample, n-1) of every numeric column."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["architecture"], []).append(r)
    numeric = [c for c in columns(rows) if c.startswith(("validation_", "test_")) or c in (*SPEED, "params")]
    out = []
    for arch, rs in groups.items():
        g = {"architecture": arch, "encoder": rs[0]["encoder"], "decoder": rs[0]["decoder"], "runs": len(rs),
             "seeds": " ".join(str(r["seed"]) for r in rs)}
        for c in numeric:
            vals = [r[c] for r in rs if isinstance(r.get(c), (int, float))]
            g[f"{c}_mean"] = statistics.fmean(vals) if vals else None
            g[f"{c}_std"] = statistics.stdev(vals) if len(vals) > 1 else None
        out.append(g)
    return out


def write_csv(path: Path, rows: list[dict], cols: list[str]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({c: "" if r.get(c) is None else r.get(c) for c in cols})
