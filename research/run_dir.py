"""Loads a finished training run: its config, tokenizer, model and parameters.

A run directory (written by `research.train`) holds

  .hydra/config.yaml          the composed config the run trained with
  tokenizer/joint.model       or source.model and target.model (a classifier's: joint.model and labels.json)
  checkpoints/{best,last}/<step>/{state,meta}   orbax: TrainState and JSON meta
  checkpoints/average/{last,best}<K>/{state,meta}   an average of K of them (research/training/averaging.py)

`load(..., checkpoint=)` takes `best` (the default; the last one, with a
warning, when the run has no best), `last`, or `last:K` / `best:K`: the
average of the last or best K checkpoints, as written by
`python -m research.average RUN_DIR --last K` or at the end of a run with
`trainer.average=last:K`; one that no longer covers the run's current last
or best K checkpoints (the run was resumed since) loads with a warning.

The config is the run's own, not the repository's current defaults; the
`decode` and `data` groups may be overridden (a different search, another
test set), and the architecture rebuilt from it must equal the one recorded
in the checkpoint, so a config edited after training fails loudly.
The tokenizer and the model are the run's task's (`research.tasks`:
`load_tokenizer`, `build_model`), so a classification run loads as its own.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Sequence

import orbax.checkpoint as ocp
from omegaconf import OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from research import tasks
from research.config import REPO, RunConfig, name_follows_dir, register_schemas, resolve
from research.data.tokenizer import Tokenizer
from research.registry import ConfigError
from research.training import averaging
from research.training import checkpoint as checkpoints
from research.training import evaluation
from research.training.checkpoint import restore_params  # here before it moved; still importable from here

log = logging.getLogger(__name__)

# Groups that may be swapped at evaluation time; the rest define the trained model.
SWAPPABLE_GROUPS = ("decode", "data")


@dataclasses.dataclass(frozen=True)
class Run:
    path: Path
    cfg: RunConfig
    tokenizer: Tokenizer  # or the task's own (research/data/labels.py: LabelledTokenizer)
    model: Any  # the task's flax module: Seq2Seq, or research/models/classifier.py's Classifier
    params: Any
    checkpoint: str  # "best", "last" or "last:K" / "best:K" (averaged): the one actually loaded
    step: int  # of the checkpoint; of the newest averaged one for an average
    meta: dict  # the checkpoint's JSON meta: architecture, step, validation metrics


def parse_args(argv: Sequence[str], options: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Splits `key=value` arguments into command options and config overrides.

    Args:
      argv: e.g. ["run_dir=out/x", "split=test", "decode=beam"].
      options: the command's own keys with their defaults (None = required);
        a default's type converts the value.

    Returns:
      (options with the given values, the remaining arguments as overrides).
    """
    opts, overrides = dict(options), []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise ConfigError(f"{arg}: arguments are key=value")
        if key not in options:
            overrides.append(arg)
            continue
        default = options[key]
        try:
            opts[key] = (value.lower() in ("1", "true", "yes")) if isinstance(default, bool) else type(default)(value) if default is not None else value
        except ValueError:
            raise ConfigError(f"{key}: '{value}' is not a {type(default).__name__}") from None
    missing = [k for k, v in opts.items() if v is None]
    if missing:
        raise ConfigError(f"{', '.join(missing)}: required (e.g. {missing[0]}=...)")
    return opts, overrides


def group_config(group: str, name: str):
    """`conf/<group>/<name>.yaml` as a run composes it: its defaults list (a shared base, another option) included."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():  # inside a Hydra app: its config search path is this conf/
        return compose(config_name="config", overrides=[f"{group}={name}"])[group]
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        return compose(config_name="config", overrides=[f"{group}={name}"])[group]


def load_config(run_dir: Path, overrides: Sequence[str] = ()) -> RunConfig:
    """The run's saved config with `overrides` applied, strictly resolved.

    Overrides are `group.key=value` for existing keys (a typo fails, naming
    the key), or `decode=NAME` / `data=NAME` to take a whole group from
    `conf/<group>/NAME.yaml`.
    """
    path = Path(run_dir) / ".hydra" / "config.yaml"
    if not path.exists():
        raise FileNotFoundError(f"{path}: not a run directory of research.train (no saved config)")
    register_schemas()  # the ${repo:} resolver
    overrides = name_follows_dir(overrides)  # another corpus folder gets its own data.name
    cfg = OmegaConf.load(path)
    OmegaConf.set_struct(cfg, True)
    for override in overrides:
        key, _, value = override.partition("=")
        try:
            if "." in key:
                cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([override]))
                continue
            if key not in SWAPPABLE_GROUPS:
                raise ConfigError(f"{key}: only the {' and '.join(SWAPPABLE_GROUPS)} groups can change after training")
            group_file = REPO / "conf" / key / f"{value}.yaml"
            if not group_file.exists():
                options = ", ".join(sorted(p.stem for p in group_file.parent.glob("*.yaml")))
                raise ConfigError(f"{key}={value}: no such config; options: {options}")
            with open_dict(cfg):
                cfg[key] = group_config(key, value)
        except OmegaConfBaseException as e:
            raise ConfigError(f"{override}: {str(e).splitlines()[0]}") from None
    return resolve(cfg)


def find_checkpoint(run_dir: Path, which: str = "best") -> tuple[str, int, Path]:
    """-> (kind, step, step folder) of the newest complete checkpoint of `which`.

    Falls back from best to last (with a warning): a run stopped before its
    first validation has no best checkpoint.
    """
    if which not in ("best", "last"):
        raise ConfigError(f"checkpoint: '{which}' is not one of best, last, last:K, best:K")
    root = Path(run_dir).absolute() / "checkpoints"
    for kind in (which, "last"):
        folder = root / kind
        step = None
        if folder.is_dir():
            mngr = ocp.CheckpointManager(folder, options=ocp.CheckpointManagerOptions(create=False, read_only=True))
            step = mngr.latest_step()  # complete checkpoints only
            mngr.close()
        if step is not None:
            if kind != which:
                log.warning("no %s checkpoint in %s; using the last one (step %d)", which, root, step)
            return kind, step, folder / str(step)
    raise FileNotFoundError(f"{root}: no complete checkpoint (best or last)")


def find_average(run_dir: Path, cfg: RunConfig, spec: str) -> tuple[int, Path]:
    """-> (newest averaged step, folder) of the averaged checkpoint `spec` ("last:5", "best:3").

    It is read, never computed here: FileNotFoundError says how to write it.
    """
    kind, k = averaging.parse(spec, key="checkpoint", extra="best, last, ")
    where = averaging.folder(run_dir, kind, k)
    if not (where / "meta" / "metadata").is_file():
        raise FileNotFoundError(f"{where}: no averaged checkpoint; write it with "
                                f"python -m research.average {run_dir} --{kind} {k}")
    meta = checkpoints.read_meta(where)
    try:
        current = [int(p.name) for p in averaging.choose(run_dir, kind, k, *evaluation.selection(
            cfg.data.task, cfg.trainer.select_by), label=f"checkpoint={spec}")]
    except (ConfigError, checkpoints.CheckpointError):
        current = None
    averaged = (meta.get("average") or {}).get("steps")
    if current is not None and current != averaged:
        log.warning("%s averages steps %s, but the run's %s %d are now %s; rewrite it with "
                    "python -m research.average %s --%s %d", where, averaged, kind, k, current, run_dir, kind, k)
    return int(meta["step"]), where


def from_config(run_dir: str | Path, cfg: RunConfig, checkpoint: str = "best") -> Run:
    """The run in `run_dir` with the config `cfg` (not read from the folder) and the
    parameters of `checkpoint` (see the module docstring).

    The checkpoint must match the model and tokenizer the config rebuilds
    (checked before any array is read) and its parameters must match the
    digest written with them.
    """
    run_dir = Path(run_dir)
    task = tasks.get(cfg.data.task)
    tok = task.load_tokenizer(run_dir / "tokenizer")
    model, arch = task.build_model(cfg, tok)
    if checkpoint in ("best", "last"):
        kind, step, step_dir = find_checkpoint(run_dir, checkpoint)
    else:
        kind, (step, step_dir) = checkpoint, find_average(run_dir, cfg, checkpoint)
    meta = checkpoints.read_meta(step_dir)
    checkpoints.check_compatible(meta, {"architecture": arch.meta(), "tokenizer": tok.fingerprint()}, step_dir)
    params = restore_params(step_dir)
    checkpoints.verify(params, meta, "params", step_dir)
    log.info("loaded %s checkpoint of %s at step %d", kind, run_dir, step)
    return Run(run_dir, cfg, tok, model, params, kind, step, meta)


def with_params(run_dir: str | Path, cfg: RunConfig, params: Any, label: str, step: int, meta: dict) -> Run:
    """The run in `run_dir` with parameters held in memory (an average not read back, the final
    state of a run without checkpoints); `label` and `step` say which they are."""
    run_dir = Path(run_dir)
    task = tasks.get(cfg.data.task)
    tok = task.load_tokenizer(run_dir / "tokenizer")
    model, _ = task.build_model(cfg, tok)
    return Run(run_dir, cfg, tok, model, params, label, step, meta)


def load(run_dir: str | Path, overrides: Sequence[str] = (), checkpoint: str = "best") -> Run:
    """Everything needed to decode with a finished run: its saved config with
    `overrides` applied (see `load_config`) and the parameters of `checkpoint`
    (see the module docstring and `from_config`)."""
    return from_config(run_dir, load_config(run_dir, overrides), checkpoint)
