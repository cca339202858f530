"""`python -m research.report MULTIRUN_DIR [--out DIR]`: one report for every run of a sweep.

A run is a folder under MULTIRUN_DIR with `.hydra/config.yaml` (+ overrides.yaml),
`summary.json` and `metrics.jsonl`; runs without a summary or metrics are
skipped with a warning that lists them. Writes into `--out` (default: MULTIRUN_DIR):

  report.md                    the decision (test metric per architecture with a 95% t interval over
                               seeds, paired significance against the best, the group not
                               significantly different from it; the task's baselines such as
                               summarization's leads, tested alike), quality against compute, the
                               tables below, the plots and how the sweep was run; for tasks that
                               write text (translation, summarization) the share of test hypotheses
                               that repeat a word 3-gram, beside the references', overall and by
                               source length and whether the source repeats a word (analysis/repetition.py)
  report.csv                   one row per run: encoder, decoder, seed, parameters, final
                               validation metrics, test metrics (from eval_test.json when
                               `python -m research.evaluate` wrote one), tokens/s, compile s, wall s;
                               the baselines' test scores (test_baseline_<name>_<score>)
  report_by_architecture.csv   mean and standard deviation over seeds per architecture
  metric_vs_params.png         the task metric against the parameter count, every run
  validation_curves.png        validation loss and task metric over steps, every run
  metric_vs_compute.png        the task metric against cumulative training FLOPs and seconds, every run,
                               with the architectures' final points and their Pareto frontier
  accuracy_by_length.png       sequence tasks only: exact-match accuracy per target-length bucket, mean
                               ± std over seeds, the longest training target marked (also a table)
  tb/                          TensorBoard HParams data: `tensorboard --logdir OUT/tb`

`--tune KEY [KEY ...]` adds a section for a sweep that crosses architectures with a hyperparameter:
each architecture at its setting of KEY with the best validation score, compared on the test set
(research/analysis/tuning.py); report_by_architecture.csv then says which settings were chosen.
"""
from __future__ import annotations

import argparse
import collections
import json
import logging
import math
import shutil
import sys
from pathlib import Path

from research import console, sweep, tasks
from research.analysis import decide, lengths, plots, repetition, sections, tables, tuning
from research.analysis.runs import (SPEED, aggregate, architectures, collect, columns, find_runs, manifest, short_code,
                                    write_csv)
from research.training import hardware

log = logging.getLogger("research.report")


def hparams(rows: list[dict], out: Path, decision: dict | None = None) -> None:
    """One HParams session per run under out/tb, for TensorBoard's HParams dashboard; `decision`
    ({architecture: {name: value}}) adds its architecture's interval and p-values to each."""
    from tensorboardX import SummaryWriter  # noqa: PLC0415

    clear_previous(out / "tb")
    with SummaryWriter(str(out / "tb")) as w:
        for r in rows:
            hp = {"encoder": r["encoder"], "decoder": r["decoder"], "seed": int(r["seed"]), "params": int(r["params"]),
                  "architecture": r["architecture"]}
            metrics = {f"{k.split('_', 1)[0]}/{k.split('_', 1)[1]}": float(v) for k, v in r.items()
                       if k.startswith(("validation_", "test_")) and isinstance(v, float) and math.isfinite(v)}
            metrics.update({f"speed/{k}": float(r[k]) for k in SPEED if k in r})
            metrics.update({f"decision/{k}": float(v) for k, v in (decision or {}).get(r["architecture"], {}).items()
                            if decide.finite(v)})
            w.add_hparams(hp, metrics, name=r["run"].replace("/", "_"))


def clear_previous(tb: Path) -> None:
    """Removes an earlier report's HParams event files, so a regenerated report shows each run once.

    Only a folder of nothing but TensorBoard event files is cleared; anything else in it stops the report
    with its name, since that folder is not the report's own."""
    if not tb.exists():
        return
    files = [p for p in tb.rglob("*") if p.is_file()]
    other = [p for p in files if not p.name.startswith("events.out.tfevents.")]
    if other:
        raise SystemExit(f"error: {tb} holds files a report does not write ({other[0]}); choose another --out")
    shutil.rmtree(tb)


def command(root: Path) -> tuple[str, bool] | None:
    """(the command line that started the sweep, True), from its sweep.json; for a sweep recorded before
    sweep.json kept it, (that of its LAST launch, from Hydra's multirun.yaml, which every launch rewrites, False)."""
    # A report of one folder of a sweep whose subdir groups its jobs (compare_diagnostics: one per task)
    # finds the sweep's files one level up.
    root = next((d for d in (root, root.parent) if (d / "multirun.yaml").exists()), None)
    if root is None:
        return None
    record = root / sweep.RECORD
    first = json.loads(record.read_text()).get("launch") if record.exists() else None
    shown = (first, True) if first is not None else (sweep.launch(root), False)
    return "python -m research.train " + " ".join(shown[0]) + " -m", shown[1]


def commands(root: Path) -> list[tuple[str | None, tuple[str, bool]]]:
    """Every launch's `command`, each with its folder's name: the sweep at `root` (or one level up) alone, named
    None; else each sweep folder directly inside `root`, for a report of the parent of several launches
    (compare_translation_top_two: one launch per arm, whose commands differ)."""
    one = command(root)
    if one is not None:
        return [(None, one)]
    return [(d.name, found) for d in sorted(root.iterdir())
            if d.is_dir() and (d / "multirun.yaml").exists() and (found := command(d)) is not None]


def command_lines(found: list[tuple[str | None, tuple[str, bool]]]) -> list[str]:
    """The report's lines for `commands(root)`: none where no launch left its files."""
    if not found:
        return []
    if found[0][0] is None:
        (cmd, first), = (f[1] for f in found)
        return ["Sweep command:" if first else "Sweep command (of its last launch, a resumption or the first; "
                "the sweep predates sweep.json's record of the first):", "", f"    {cmd}", ""]
    lines = [f"Sweep commands, one for each of the {len(found)} launches this folder holds:", ""]
    for name, (cmd, first) in found:
        lines += [f"    # {name}" + ("" if first else " (its last launch: it predates sweep.json's record of the first)"),
                  f"    {cmd}"]
    return lines + [""]


def environment(run: Path) -> str | None:
    """The code, machine, devices, library versions and data of one run (its manifest.json); None without one.

    The machine is its CPU model, cores, accelerator and `hardware.fingerprint` (which also covers the
    instruction-set flags: float results differ between hosts, even under one model name).
    """
    m = manifest(run)
    if m is None:
        return None
    git, dev, v = m.get("git", {}), m.get("devices", {}), m.get("versions", {})
    dirty = " (uncommitted changes)" if git.get("dirty") else ""
    hw = m.get("hardware")
    machine = (f"{hw['cpu']}, {hw['cores']} cores" + (f", {hw['accelerator']}" if hw.get("accelerator") else "")
               + f" (machine {hardware.fingerprint(hw)})") if hw else "hardware not recorded"
    return (f"code {git.get('commit') or 'unknown'}{dirty}; {machine}; {dev.get('count')} x {dev.get('kind')} ({dev.get('platform')}); "
            f"Python {v.get('python')}, jax {v.get('jax')}, flax {v.get('flax')}, optax {v.get('optax')}; "
            f"data fingerprint {m.get('data', {}).get('fingerprint')}")


def machines(runs: list[Path]) -> dict[str, int]:
    """'CPU (machine fingerprint)' -> how many of `runs` computed on it, for the runs whose manifest records it."""
    recorded = ((manifest(run) or {}).get("hardware") for run in runs)
    return collections.Counter(f"{hw['cpu']} ({hardware.fingerprint(hw)})" for hw in recorded if hw)


def markdown(root: Path, rows, groups, images, skipped, regenerate: str, verdict: dict | None = None,
             by_length: dict | None = None, found: dict | None = None, repeated: dict | None = None) -> str:
    metric = rows[0]["metric"]
    cols = columns(rows)
    val = [c for c in cols if c.startswith("validation_")]
    test = [c for c in cols if c.startswith("test_")]
    scored = (f"validation_{metric}", f"test_{metric}")
    d = tables.places([r.get(c) for r in rows for c in scored])  # 3 places for a metric on [0, 1]
    lines = [f"# Sweep report: {root.name}", ""]
    lines += [f"{len(rows)} runs, {len(groups)} architectures; task metric **{metric}** "
              f"(validation at the last step; test where `eval_test.json` exists). Steps per run: "
              f"{', '.join(sorted({str(r['steps']) for r in rows}))}.", ""]
    lines += command_lines(commands(root))
    lines += ["Report command:", "", f"    {regenerate}", ""]
    env = environment(root / rows[0]["run"])
    if env:
        lines += [f"Environment: {env}.", ""]
    mixed = machines([root / r["run"] for r in rows])
    if len(mixed) > 1:
        lines += [f"**Computed on {len(mixed)} machines**, so seeds and architectures may differ by more than their "
                  "training: " + "; ".join(f"{k}: {n} runs" for k, n in mixed.items()) + ".", ""]
    versions = collections.Counter(r["code"] for r in rows if r["code"])
    if len(versions) > 1:
        lines += [f"**Computed at {len(versions)} commits**: where the code they ran differs between them (`git diff A B "
                  "-- research`), runs may differ by more than their training: "
                  + "; ".join(f"{short_code(c)}: {n} run{'s' * (n != 1)}" for c, n in versions.items()) + ".", ""]
    if skipped:
        lines += [f"Skipped {len(skipped)} incomplete runs: {', '.join(skipped)}.", ""]
    if verdict:
        lines += sections.decision_lines(groups, verdict, d)
    if found:
        lines += sections.tuned_lines(found, d)
    if by_length:
        lines += sections.length_lines(by_length)
    if repeated:
        lines += sections.repetition_lines(repeated)
    lines += ["## By architecture (mean ± std over seeds)", ""]
    header = ["architecture", "runs", "parameters", f"validation {metric}", "validation loss",
              *[f"test {c[5:]}" for c in test if c == f"test_{metric}"], "tokens/s", "wall s"]
    body = []
    for g in sections.better_first(groups, f"validation_{metric}", metric):
        body.append([g["architecture"], str(g["runs"]), tables.number(round(g["params_mean"]), 0),
                     sections.pm(g, f"validation_{metric}", d), sections.pm(g, "validation_loss", 3),
                     *[sections.pm(g, c, d) for c in test if c == f"test_{metric}"],
                     sections.pm(g, "tokens_per_s", 0), sections.pm(g, "wall_s", 0)])
    lines += [tables.table(header, body), ""]
    lines += ["## Runs", ""]
    shown = ["run", "encoder", "decoder", "seed", "params", *val, *test, *SPEED]
    lines += [tables.table([c.replace("validation_", "val ").replace("_", " ") for c in shown],
                     [[tables.number(r.get(c), 3 if "loss" in c else d if c in scored else 2) for c in shown]
                      for r in rows]), ""]
    lines += ["## Plots", ""] + [f"![{i}]({i})" for i in images] + [""]
    lines += ["HParams: `tensorboard --logdir tb` in this folder, tab HPARAMS.", ""]
    return "\n".join(lines)


def tuned(root: Path, rows: list[dict], groups: list[dict], keys: list[str], references) -> dict:
    """Each family at its setting of `keys` with the best validation mean (`analysis/tuning.py`), and the
    decision among the chosen on the test set: {"keys", "choice", "groups", "verdict"}. Baselines are left to
    the main decision, which already tests the best against them."""
    choice = tuning.choose(rows, groups, keys)
    chosen = {c["chosen"] for c in choice}
    sub_rows = [r for r in rows if r["architecture"] in chosen]
    # Copies without the main decision's intervals and p-values, which `decision` fills afresh for these.
    sub_groups = [{k: v for k, v in g.items() if not k.startswith(("p_", "ci_", "holm_", "in_best_group"))}
                  for g in groups if g["architecture"] in chosen]
    verdict = decision(root, sub_rows, sub_groups, references, splits=None)
    return {"keys": keys, "choice": choice, "groups": sub_groups, "verdict": verdict}


def report(root: Path, out: Path | None = None, regenerate: str | None = None, references=None, splits=None,
           tune: list[str] | None = None, sources=None) -> dict:
    """Writes the report files for the sweep in `root`; returns {"rows", "groups", "skipped", "out", "verdict",
    "tuned", "repetition"}. `tune`: override keys each architecture is compared at its best setting of (`tuned`).

    `references(run_dir)` gives a run's test references, `sources(run_dir)` its test sources, `splits(run_dir)`
    what baselines need (`splits_of`); all default to reading the run's data config.
    """
    root = Path(root)
    out = Path(out) if out else root
    out.mkdir(parents=True, exist_ok=True)
    finished, incomplete = find_runs(root, exclude=out if out != root else None)
    skipped = [str(r.relative_to(root)) for r in incomplete]
    if skipped:
        log.warning("skipping %d incomplete runs (no summary.json or metrics.jsonl): %s", len(skipped), ", ".join(skipped))
    if not finished:
        raise SystemExit(f"error: no finished runs under {root}" + (f" ({len(skipped)} incomplete)" if skipped else ""))
    rows = [collect(root, r) for r in finished]
    try:
        decide.check_comparable(root, rows)
    except decide.MixedSweep as e:
        raise SystemExit(f"error: {e}") from None
    architectures(rows)
    try:
        if tune:
            tuning.families(rows, tune)  # a key the sweep does not vary stops the report before any work
    except tuning.BadTune as e:
        raise SystemExit(f"error: {root}: {e}") from None
    groups = aggregate(rows)
    try:
        verdict = decision(root, rows, groups, references or references_of, splits or splits_of)
        found = tuned(root, rows, groups, tune, references or references_of) if tune else None
    except decide.MixedSweep as e:  # test outputs that do not pair up
        raise SystemExit(f"error: {e}") from None
    except tuning.BadTune as e:
        raise SystemExit(f"error: {root}: {e}") from None
    if found:
        family = {s["architecture"]: f["family"] for f in found["choice"] for s in f["settings"]}
        chosen = {f["chosen"] for f in found["choice"]}
        for g in groups:
            g["family"], g["chosen_on_validation"] = family[g["architecture"]], g["architecture"] in chosen
    table = with_baselines(rows, verdict["baselines"])
    write_csv(out / "report.csv", table, columns(table))
    gcols = ["architecture", "encoder", "decoder", "runs", "seeds"] + [k for k in groups[0] if k.endswith(("_mean", "_std"))]
    gcols += ["ci_low", "ci_high", *[f"p_{c}" for c in verdict["p_columns"]], "in_best_group"]
    gcols += ["holm_p", "in_best_group_holm"] if verdict["p_columns"] else []
    gcols += ["family", "chosen_on_validation"] if found else []
    write_csv(out / "report_by_architecture.csv", groups, gcols)
    images = plots.plots(rows, groups, out) + [plots.compute_plot(rows, groups, verdict["compute"], verdict["column"], out)]
    by_length = lengths.by_length(rows)
    if by_length:
        images.append(plots.length_plot(groups, by_length, out))
    hparams(rows, out, {g["architecture"]: {k: g.get(k) for k in ("ci_low", "ci_high", *[f"p_{c}" for c in verdict["p_columns"]],
                                                                 "holm_p")}
                        for g in groups})
    regenerate = regenerate or (f"python -m research.report {root}" + (f" --out {out}" if out != root else "")
                                + (f" --tune {' '.join(tune)}" if tune else ""))
    text = tasks.by_metric(rows[0]["metric"]).writes_text
    repeated = (repetition.by_architecture(root, rows, references or references_of, sources or sources_of)
                if text else None)
    (out / "report.md").write_text(markdown(root, rows, groups, images, skipped, regenerate, verdict, by_length, found,
                                            repeated))
    return {"rows": rows, "groups": groups, "skipped": skipped, "out": out, "verdict": verdict, "tuned": found,
            "repetition": repeated}


def with_baselines(rows: list[dict], found: dict[str, dict]) -> list[dict]:
    """report.csv's rows: `rows`, each with the test scores of the baselines that no run records (summarization's
    leads, which need no training, so no run scores them), as `test_baseline_<name>_<score>` with the name's
    spaces as hyphens. Those are the columns the runs write for their fitted baselines (TF-IDF, lookup), where
    research.scaling reads a task's baselines. A baseline the runs record keeps their columns as they wrote
    them. report.md's run table leaves the copies out: its Baselines section has them once."""
    recorded = {k for r in rows for k in r}
    added = {}
    for name, b in found.items():
        prefix = f"test_baseline_{name.replace(' ', '-')}_"
        if not any(k.startswith(prefix) for k in recorded):
            added.update({prefix + score: v for score, v in b["scores"].items() if isinstance(v, (int, float))})
    return [{**r, **added} for r in rows]


def references_of(run: Path) -> list[str]:
    """The references of a run's test split, in corpus order (what its hyps_test.txt lines answer)."""
    return _test_field(run, "target")


def sources_of(run: Path) -> list[str]:
    """The sources of a run's test split, in corpus order."""
    return _test_field(run, "source")


def _test_field(run: Path, field: str) -> list[str]:
    from research.evaluate import read_split  # noqa: PLC0415
    from research.run_dir import load_config  # noqa: PLC0415

    examples = read_split(load_config(run).data, "test")
    return [examples[i][field] for i in range(len(examples))]


def splits_of(run: Path) -> tuple[list[str], list[str], list[str], object]:
    """(test sources, test references, training targets, data config) of a run's data: what baselines need."""
    from research.evaluate import read_split  # noqa: PLC0415
    from research.run_dir import load_config  # noqa: PLC0415

    data = load_config(run).data
    test, train = read_split(data, "test"), read_split(data, "train")
    return ([test[i]["source"] for i in range(len(test))], [test[i]["target"] for i in range(len(test))],
            [train[i]["target"] for i in range(len(train))], data)


def decision(root: Path, rows: list[dict], groups: list[dict], references=references_of, splits=splits_of) -> dict:
    """Intervals, significance against the best and the compute analysis (`analysis/decide.py`);
    fills each group's `ci_low`, `ci_high`, `p_*` and `in_best_group`; and `holm_p`, the smallest of its p-values
    once every p-value against the best is adjusted as one family (`decide.holm`), and `in_best_group_holm`, whether
    that stays >= 0.05. `splits=None`: no baselines."""
    column, what = decide.scored_by(rows)
    intervals = decide.intervals(rows, column)
    lower = tasks.by_metric(rows[0]["metric"]).lower_is_better
    best = (min if lower else max)(intervals, key=lambda a: intervals[a].mean)
    sig = decide.significance(root, rows, best, references)
    seeds = sig.pop("_seeds", {}).get("seeds", [])
    p_columns = sorted({k for v in sig.values() for k in v})
    for g in groups:
        i = intervals.get(g["architecture"])
        g["ci_low"], g["ci_high"] = (i.low, i.high) if i else (None, None)
        ps = sig.get(g["architecture"], {})
        g.update({f"p_{k}": v for k, v in ps.items()})
        g["in_best_group"] = g["architecture"] == best or (bool(ps) and decide.not_different(ps))
    family = decide.holm({(a, k): p for a, ps in sig.items() for k, p in ps.items()})
    for g in groups:
        adjusted = [p for (a, _), p in family.items() if a == g["architecture"]]
        g["holm_p"] = min(adjusted) if adjusted else None
        g["in_best_group_holm"] = g["architecture"] == best or (bool(adjusted) and g["holm_p"] >= decide.GROUP_NOT_DIFFERENT)
    return {"column": column, "what": what, "best": best, "p_columns": p_columns, "seeds": seeds, "metric": rows[0]["metric"],
            "compute": decide.compute(rows, column),
            "baselines": decide.baselines(root, rows, best, seeds, splits) if splits else {}}


def main(argv: list[str] | None = None) -> int:
    console.setup_logging()
    p = argparse.ArgumentParser(prog="python -m research.report", description=__doc__.split("\n\n")[0])
    p.add_argument("multirun_dir", type=Path, help="a Hydra sweep directory (multirun/...)")
    p.add_argument("--out", type=Path, help="where to write the report (default: the sweep directory)")
    p.add_argument("--tune", nargs="+", metavar="KEY", help="override keys the sweep varies (optim.learning_rate): "
                   "compare each architecture at its setting with the best validation score, on the test set")
    args = p.parse_args(argv)
    result = report(args.multirun_dir, args.out, tune=args.tune)
    print(f"{len(result['rows'])} runs, {len(result['skipped'])} skipped -> {result['out'] / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
