"""Loads a finished training run: its config, tokenizer, model and parameters.

A run directory (written by `research.train`) holds

  .hydra/config.yaml          the composed config the run trained with
  tokenizer/joint.model       or source.model and target.model
  checkpoints/{best,last}/<step>/{state,meta}   orbax: TrainState and JSON meta

The config is the run's own, not the repository's current defaults; the
`decode` and `data` groups may be overridden (a different search, another
test set), and the architecture rebuilt from it must equal the one recorded
in the checkpoint, so a config edited after training fails loudly.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Sequence

import jax
import orbax.checkpoint as ocp
from omegaconf import OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from research.config import REPO, RunConfig, name_follows_dir, register_schemas, resolve
from research.data import tokenizer as tokenizers
from research.data.tokenizer import Tokenizer
from research.models.seq2seq import Seq2Seq, architecture
from research.registry import ConfigError
from research.training import checkpoint as checkpoints

log = logging.getLogger(__name__)

# Groups that may be swapped at evaluation time; the rest define the trained model.
SWAPPABLE_GROUPS = ("decode", "data")


@dataclasses.dataclass(frozen=True)
class Run:
    path: Path
    cfg: RunConfig
    tokenizer: Tokenizer
    model: Seq2Seq
    params: Any
    checkpoint: str  # "best" or "last": the one actually loaded
    step: int
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
            node = OmegaConf.load(group_file)
            node.pop("defaults", None)
            with open_dict(cfg):
                cfg[key] = node
        except OmegaConfBaseException as e:
            raise ConfigError(f"{override}: {str(e).splitlines()[0]}") from None
    return resolve(cfg)


def find_checkpoint(run_dir: Path, which: str = "best") -> tuple[str, int, Path]:
    """-> (kind, step, step folder) of the newest complete checkpoint of `which`.

    Falls back from best to last (with a warning): a run stopped before its
    first validation has no best checkpoint.
    """
    if which not in ("best", "last"):
        raise ConfigError(f"checkpoint: '{which}' is not one of best, last")
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


def restore_params(step_dir: Path) -> Any:
    """Restores only the parameters of a saved TrainState, onto the default device.

    The target is built from the checkpoint's own metadata, so no optimizer
    has to be rebuilt, and parameters saved on another device kind (a GPU
    run, evaluated on CPU) load all the same.
    """
    path = Path(step_dir).absolute() / "state"
    tree = ocp.StandardCheckpointer().metadata(path).item_metadata.tree
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    target = {"params": jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), tree["params"])}
    args = ocp.args.PyTreeRestore(item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target),
                                  partial_restore=True)
    with ocp.PyTreeCheckpointer() as ckpt:
        return ckpt.restore(path, args=args)["params"]


def load(run_dir: str | Path, overrides: Sequence[str] = (), checkpoint: str = "best") -> Run:
    """Everything needed to decode with a finished run (see module docstring).

    The checkpoint must match the model and tokenizer the config rebuilds
    (checked before any array is read) and its parameters must match the
    digest written with them.
    """
    run_dir = Path(run_dir)
    cfg = load_config(run_dir, overrides)
    tok = tokenizers.from_folder(run_dir / "tokenizer")
    arch = architecture(cfg, tok.source_vocab, tok.target_vocab)
    kind, step, step_dir = find_checkpoint(run_dir, checkpoint)
    meta = checkpoints.read_meta(step_dir)
    checkpoints.check_compatible(meta, {"architecture": arch.meta(), "tokenizer": tok.fingerprint()}, step_dir)
    params = restore_params(step_dir)
    checkpoints.verify(params, meta, "params", step_dir)
    log.info("loaded %s checkpoint of %s at step %d", kind, run_dir, step)
    return Run(run_dir, cfg, tok, Seq2Seq(arch), params, kind, step, meta)
