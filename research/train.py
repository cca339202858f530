"""`python -m research.train encoder=cnn decoder=rnn data=ddtp_de_en [+experiment=NAME]`."""
from __future__ import annotations

import json
import logging
import shlex
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from research import console, sweep
from research.training import budget as budgets
from research.config import name_follows_dir, register_schemas, resolve
from research.registry import ConfigError
from research.data.errors import DataError
from research.training.checkpoint import CheckpointError
from research.training.hooks import Diverged
from research.training.loop import train

log = logging.getLogger("research.train")

register_schemas()


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    console.setup_logging(hydra=True)
    try:
        run = resolve(cfg)
    except ConfigError as e:
        log.error("config error: %s", e)
        sys.exit(2)
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    if hydra_cfg.mode == RunMode.MULTIRUN:  # resumable sweeps (research/sweep.py)
        try:
            (sweep.check_resume if run.trainer.resume else sweep.record)(Path(hydra_cfg.sweep.dir))
        except ConfigError as e:
            log.error("%s", e)
            sys.exit(2)
    done = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").exists() else None
    if run.trainer.resume and done and finished_under(done, run.trainer):
        if run.trainer.test and "test" not in done:
            return finish_test(run, run_dir, done)
        # Finished under this budget: left as it is (nothing logged, nothing written), so a resumed sweep only
        # reruns the rest. A larger budget or max_steps continues the run from its last checkpoint instead.
        print(f"{run_dir}: finished at step {done['steps']}; trainer.resume leaves it as it is")
        return done["validation"].get(done["metric"])
    try:
        summary = train(run, run_dir)
    except (Diverged, CheckpointError) as e:
        log.error("%s", e)
        sys.exit(3)
    except ConfigError as e:  # found after training: the test evaluation's (trainer.average with too few checkpoints)
        log.error("%s", e)
        sys.exit(2)
    except DataError as e:  # a corpus that cannot be read (file and line), or a catalog dataset not prepared here
        log.error("data error: %s", e)
        sys.exit(2)
    if "preempted" in summary:
        kept = [o for o in hydra_cfg.overrides.task if not o.startswith(("trainer.resume=", "hydra.run.dir="))]
        again = " ".join(map(shlex.quote, [*kept, "trainer.resume=true", f"hydra.run.dir={run_dir}"]))
        print(f"\nstopped by {summary['signal']} at step {summary['preempted']}; to continue:\n"
              f"  python -m research.train {again}")
        return None
    print(report(summary, run_dir))
    return summary["validation"].get(summary["metric"])


def finish_test(cfg, run_dir: Path, done: dict) -> float | None:
    """A run stopped while it decoded its test split (summary.json, written before the test, has no `test`):
    only the test evaluation runs again, from the checkpoints, and joins the summary. Training, metrics and
    timings stay as they were, so the run reads as if it had never been interrupted."""
    from research.training import distributed, final_eval  # noqa: PLC0415  (only this path needs them)

    distributed.initialize(cfg.mesh)
    print(f"{run_dir}: trained to step {done['steps']} but has no test evaluation; trainer.resume runs only that")
    try:
        test = final_eval.evaluate_test(run_dir, cfg, distributed.is_main())
    except ConfigError as e:  # trainer.average with too few checkpoints, as at the end of training
        log.error("%s", e)
        sys.exit(2)
    done["test"] = final_eval.short(test)
    if distributed.is_main():
        (run_dir / "summary.json").write_text(json.dumps(done, indent=2))
    print(report(done, run_dir))
    return done["validation"].get(done["metric"])


def finished_under(summary: dict, trainer) -> bool:
    """The run of `summary` ended under the budget and step cap `trainer` asks for (nothing left to train)."""
    spent = summary.get("budget") or {"kind": "steps", "amount": summary.get("max_steps")}
    return (summary.get("max_steps") == trainer.max_steps and spent.get("kind") == trainer.budget
            and float(spent.get("amount")) == float(budgets.amount_of(trainer)))


def report(summary: dict, run_dir: Path) -> str:
    v = summary["validation"]
    parts = " + ".join(f"{summary[k]} {k}" for k in ("encoder", "decoder") if summary[k] != "none")
    lines = [f"\n{parts}, {summary['params']:,} parameters, "
             f"{summary['steps']} steps in {summary['wall_s']:.0f} s"]
    lines.append("validation: " + ", ".join(f"{k} {v[k]:.2f}" for k in v if k != "samples"))
    if summary.get("test"):
        t = summary["test"]
        lines.append(f"test ({t.get('checkpoint')} checkpoint, step {t.get('step')}): "
                     + ", ".join(f"{k} {x:.2f}" for k, x in t.items() if isinstance(x, float)))
    for src, ref, hyp in v.get("samples", []):
        lines += [f"  source:     {src}", f"  reference:  {ref}", f"  hypothesis: {hyp}"]
    lines.append(f"run directory: {run_dir}\nTensorBoard:   tensorboard --logdir {run_dir / 'tb'}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.argv[1:] = name_follows_dir(sys.argv[1:])  # data.dir=DIR alone names the run after DIR, not the default corpus
    main()
