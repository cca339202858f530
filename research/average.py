"""`python -m research.average RUN_DIR --last 5` (or `--best 3`): average a run's checkpoints.

Writes the element-wise mean of the parameters of the run's last K
checkpoints (`checkpoints/last`) or best K (`checkpoints/best`, ranked by the
validation metric `trainer.select_by` chose them by) to
`RUN_DIR/checkpoints/average/last<K>` (or `best<K>`), atomically; then

  python -m research.evaluate run_dir=RUN_DIR checkpoint=last:5
  python -m research.translate run_dir=RUN_DIR checkpoint=last:5

decode with it. A run keeps `trainer.keep_checkpoints` last checkpoints and
one best, or K best when it trained with `trainer.average=best:K`; asking for
more than it has stops with exit code 2, naming the option and the count.
Logs go to stderr; the folder written is printed on stdout.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

from research import console
from research.registry import ConfigError
from research.run_dir import load_config
from research.training import averaging, evaluation
from research.training.checkpoint import CheckpointError

log = logging.getLogger("research.average")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m research.average", description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path, help="a run directory of research.train")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--last", type=int, metavar="K", help="average the K most recent checkpoints")
    which.add_argument("--best", type=int, metavar="K", help="average the K best checkpoints by the validation metric")
    return p


def main(argv: Sequence[str]) -> int:
    console.setup_logging()
    args = parser().parse_args(argv)  # exits with code 2 on a usage error
    kind, k = ("last", args.last) if args.last is not None else ("best", args.best)
    label = f"--{kind} {k}"
    try:
        if k < 1:
            raise ConfigError(f"{label}: K must be at least 1")
        key, mode = "loss", "min"  # unused by --last, which needs no config
        if kind == "best":
            cfg = load_config(args.run_dir)
            key, mode = evaluation.selection(cfg.data.task, cfg.trainer.select_by)
        _, meta, target = averaging.build(args.run_dir, kind, k, key, mode, label)
    except (ConfigError, CheckpointError, FileNotFoundError) as e:
        log.error("%s", e)
        return 2
    print(f"wrote {target} (the mean of the {kind} {k} checkpoints, steps {meta['average']['steps']}); "
          f"decode with checkpoint={kind}:{k}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
