"""Resumable sweeps: stable job folders, and `trainer.resume=true` over a whole sweep directory.

Hydra numbers a sweep's jobs from 0 on every launch, so a relaunch cannot
find the folder of "cnn+rnn, seed 1" (hydra issues #1407, #1136, #3328).
Here a job's folder is named by its overrides instead
(`hydra.sweep.subdir: ${job_dir:${hydra.job.override_dirname}}`, with
`trainer.resume` left out of the name), so rerunning the same multirun
command with

    trainer.resume=true hydra.sweep.dir=multirun/<experiment>/<time>

lands every job in its own folder again, and each job then:

  * finished (summary.json) under the same budget and max_steps: is left as it
    is (a larger one continues it from its last checkpoint), files and modification times
    untouched (Hydra writes no `.hydra/` when resuming: `hydra.output_subdir`
    is null then for a job that has one, and the job returns before anything is logged);
    one stopped while decoding its test split (`trainer.test`, no `test` in its summary)
    runs only that evaluation again (research/train.py `finish_test`);
  * interrupted: continues from its last complete checkpoint, bit-identical
    to an uninterrupted run, as single runs do;
  * failed before any checkpoint, or never started: runs from step 0.

A sweep records the command that made it (`sweep.json`: its task
overrides, `trainer.resume` aside, and the sweeper's parameters) when its
first job starts; resuming with another command stops with the difference.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from omegaconf import OmegaConf

from research.registry import ConfigError

RECORD = "sweep.json"
NOT_NAMED = ("trainer.resume",)  # overrides that must not change a job's folder
MAX_NAME = 200  # of a file name's 255 bytes


def override_key(override: str) -> str:
    """`+experiment/rnn_depth=2x96` -> `experiment/rnn_depth`: an override's key, without Hydra's +/~/++."""
    return override.split("=", 1)[0].lstrip("+~")


def job_dir(override_dirname: str) -> str:
    """A job's folder name from Hydra's `override_dirname` (`k=v,k=v`, sorted by key): group paths
    with dots (`+experiment/budget/x/encoder=rnn` -> `experiment.budget.x.encoder=rnn`), no `+`/`~`;
    over MAX_NAME characters, cut with a hash of the whole so that names stay distinct."""
    name = re.sub(r"(^|,)[+~]+", r"\1", str(override_dirname)).replace("/", ".") or "job"
    name = re.sub(r"[^A-Za-z0-9._=,:+-]", "_", name)
    if len(name) > MAX_NAME:
        name = name[:MAX_NAME - 13] + "-" + hashlib.blake2b(name.encode(), digest_size=6).hexdigest()
    return name


def hydra_subdir(resume, output_dir) -> str | None:
    """`hydra.output_subdir`: `.hydra`, or None (Hydra writes none) when resuming a job that already has
    one, so a finished job's folder is not touched and an interrupted one keeps the config it started
    with; a job that never started gets its `.hydra/` as usual."""
    return None if str(resume).lower() == "true" and (Path(str(output_dir)) / ".hydra").is_dir() else ".hydra"


def command(sweep_dir: Path) -> dict:
    """What identifies the sweep: the launch's task overrides (trainer.resume aside) and the sweeper's
    parameters, from the `multirun.yaml` Hydra writes into the sweep directory at every launch."""
    cfg = OmegaConf.load(Path(sweep_dir) / "multirun.yaml")
    task = [str(o) for o in (OmegaConf.select(cfg, "hydra.overrides.task") or [])]
    params = OmegaConf.select(cfg, "hydra.sweeper.params")
    return {"overrides": sorted(o for o in task if override_key(o) not in NOT_NAMED),
            "sweeper_params": OmegaConf.to_container(params) if params is not None else {}}


def launch(sweep_dir: Path) -> list[str]:
    """The launch's own overrides, Hydra's too (the launcher, its job count), as typed; without the sweep
    folder and `trainer.resume`. Recorded for the report, not compared on resume: a sweep may be resumed
    with another launcher or job count and stays the same sweep."""
    cfg = OmegaConf.load(Path(sweep_dir) / "multirun.yaml")
    given = [str(o) for key in ("task", "hydra") for o in (OmegaConf.select(cfg, f"hydra.overrides.{key}") or [])]
    return [o for o in given if not o.startswith(("hydra.sweep.dir", "hydra.run.dir"))
            and override_key(o) not in NOT_NAMED]


def record(sweep_dir: Path) -> None:
    """Writes sweep.json once, at the first job of the first launch (the others find it there): what
    identifies the sweep (`command`) and, under "launch", the overrides of that first launch."""
    path = Path(sweep_dir) / RECORD
    if path.exists():
        return
    tmp = path.with_name(f".{RECORD}.{os.getpid()}")
    tmp.write_text(json.dumps({**command(sweep_dir), "launch": launch(sweep_dir)}, indent=2) + "\n")
    try:
        os.link(tmp, path)  # atomic, and fails if another job wrote it first
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def check_resume(sweep_dir: Path) -> None:
    """ConfigError unless `sweep_dir` was made by the command being resumed."""
    path = Path(sweep_dir) / RECORD
    if not path.exists():
        raise ConfigError(f"trainer.resume: {sweep_dir} holds no {RECORD}: it was not made by a research.train "
                          f"multirun (or predates resumable sweeps), so there is nothing to resume")
    made, now = json.loads(path.read_text()), command(sweep_dir)
    made.pop("launch", None)
    if made != now:
        diff = [f"{k}: {made.get(k)} then, {now.get(k)} now" for k in sorted({*made, *now}) if made.get(k) != now.get(k)]
        raise ConfigError(f"trainer.resume: {sweep_dir} was made by another command ({'; '.join(diff)}); "
                          f"resume it with the command that made it, plus trainer.resume=true")
