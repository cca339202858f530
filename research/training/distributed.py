"""Several processes, one training run: `jax.distributed.initialize` from the config or SLURM.

Each process drives its local devices; after initialisation `jax.devices()`
lists the devices of every process, so the mesh of `sharding.py` spans them
all and the same jitted step trains in lockstep everywhere. Call `initialize`
before anything else touches JAX (before the first array is created).

Sources of the process layout, in order:
  1. `mesh.coordinator_address` (+ `num_processes`, `process_id`) in the config;
  2. the SLURM environment of an `srun`/sbatch task or a submitit job
     (`SLURM_JOB_ID`, `SLURM_NTASKS`, `SLURM_PROCID`, `SLURM_STEP_NODELIST`),
     which JAX's own cluster detection reads;
  3. nothing: a single process.
"""
from __future__ import annotations

import logging
import os

import jax

from research.training.sharding import MeshConfig

log = logging.getLogger(__name__)


def slurm_tasks(environ=None) -> int:
    """Tasks of the current SLURM job step (1 outside SLURM)."""
    env = os.environ if environ is None else environ
    if "SLURM_JOB_ID" not in env:
        return 1
    return int(env.get("SLURM_NTASKS") or env.get("SLURM_NPROCS") or 1)


def wanted(cfg: MeshConfig, environ=None) -> bool:
    """Whether `initialize` will start the distributed runtime."""
    if cfg.distributed == "off":
        return False
    if cfg.distributed == "on":
        return True
    return cfg.coordinator_address is not None or slurm_tasks(environ) > 1


def initialize(cfg: MeshConfig) -> bool:
    """Starts JAX's distributed runtime when the config or SLURM asks for it.

    On CPU the cross-process collectives need an implementation (gloo; the
    setting only concerns the CPU backend, GPUs and TPUs bring their own).
    Returns True when the runtime was started
    (by this call or before it).
    """
    if not wanted(cfg):
        return False
    if jax.distributed.is_initialized():
        return True
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=cfg.coordinator_address,
        num_processes=cfg.num_processes,
        process_id=cfg.process_id,
    )
    log.info("process %d of %d; %d local and %d global devices", jax.process_index(), jax.process_count(),
             jax.local_device_count(), jax.device_count())
    return True


def is_main() -> bool:
    """Process 0 writes logs, checkpoints' metadata and reports; the others only compute."""
    return jax.process_index() == 0


def detach_file_logs() -> None:
    """On every process but the first: closes the log's file handlers (Hydra's job log in the
    run directory), so that file has one writer. Console output stays."""
    if is_main():
        return
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, logging.FileHandler)]:
        root.removeHandler(handler)
        handler.close()
