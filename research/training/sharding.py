"""Data parallelism: a device mesh with a 'data' axis, computed next to the step.

The batch is split over 'data' on its leading (row) axis; parameters and
optimizer state are replicated. The train step itself knows nothing about
devices: `jit_train_step` gives jit the shardings, and XLA partitions the
computation and inserts the all-reduce of the gradients. The same code runs
on 1 device, on N devices of one host, and on the devices of several
processes (`distributed.py`); only `mesh.data` in the config changes.
"""
from __future__ import annotations

import dataclasses

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from research.registry import check

DATA = "data"  # the mesh axis the batch rows are split over


@dataclasses.dataclass(frozen=True)
class MeshConfig:
    data: int = -1  # devices on the 'data' axis; -1 = every device of every process
    distributed: str = "auto"  # auto (start when SLURM or coordinator_address say so) | on | off
    coordinator_address: str | None = None  # "host:port" of process 0; null = detect (SLURM, Cloud TPU)
    num_processes: int | None = None  # null = detect
    process_id: int | None = None  # null = detect

    def __post_init__(self):
        check(self.data == -1 or self.data > 0, "data", "must be -1 (all devices) or positive")
        check(self.distributed in ("auto", "on", "off"), "distributed", f"'{self.distributed}' is not one of auto, on, off")
        host, _, port = (self.coordinator_address or "").rpartition(":")
        check(self.coordinator_address is None or (bool(host) and port.isdigit()), "coordinator_address",
              f"'{self.coordinator_address}' is not null or host:port")
        check(self.num_processes is None or self.num_processes > 0, "num_processes", "must be null (detect) or positive")
        check(self.process_id is None or self.process_id >= 0, "process_id", "must be null (detect) or >= 0")
        check(None in (self.num_processes, self.process_id) or self.process_id < self.num_processes, "process_id",
              f"must be below num_processes ({self.num_processes})")


def make_mesh(cfg: MeshConfig | None = None, devices=None) -> Mesh:
    """A one-axis ('data',) mesh over `cfg.data` devices (all of them for -1).

    `Mesh(...)` rather than `jax.make_mesh`: in JAX 0.10 the latter makes
    explicit-sharding axes by default, while this module relies on jit's
    automatic partitioning from in/out shardings.
    """
    devices = list(jax.devices() if devices is None else devices)
    n = len(devices) if cfg is None or cfg.data == -1 else cfg.data
    if n > len(devices):
        raise ValueError(f"mesh.data={n} but only {len(devices)} devices are visible")
    if n < len(devices) and jax.process_count() > 1:
        raise ValueError("with several processes mesh.data must be -1: every device takes part")
    return Mesh(np.array(devices[:n]), (DATA,))


def data_sharding(mesh: Mesh) -> NamedSharding:
    """Rows split over 'data'; every other axis whole."""
    return NamedSharding(mesh, P(DATA))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def pad_rows(batch: dict, multiple: int) -> dict:
    """Appends empty rows (all pad, segments 0) so the row count divides by `multiple`.

    Empty rows carry no target tokens, so they change neither the loss (an
    average over real tokens) nor the gradients.
    """
    rows = next(iter(batch.values())).shape[0]
    extra = -rows % multiple
    if not extra:
        return batch
    return {k: np.concatenate([np.asarray(v), np.zeros((extra, *v.shape[1:]), v.dtype)]) for k, v in batch.items()}


def process_rows(batch: dict) -> dict:
    """This process's contiguous share of a global batch that every process built alike."""
    rows = next(iter(batch.values())).shape[0]
    n, i = jax.process_count(), jax.process_index()
    if rows % n:
        raise ValueError(f"{rows} rows do not split over {n} processes; pad_rows first")
    share = rows // n
    return {k: v[i * share:(i + 1) * share] for k, v in batch.items()}


def shard_batch(batch: dict, mesh: Mesh, multiple: int = 1) -> dict:
    """Places a host batch on the mesh, rows split over 'data'.

    Args:
      batch: the global batch (the same on every process: each keeps its own
        rows), numpy arrays [B, ...].
      multiple: also make the rows divisible by this (trainer.grad_accum).
    Returns:
      global jax.Arrays [B', ...] with B' = B rounded up to a multiple of
      data size x multiple; the added rows are empty.
    """
    # Every device must hold whole rows of every micro-batch (they are strided: steps.micro_batches).
    batch = pad_rows(batch, mesh.shape[DATA] * multiple)
    sharding = data_sharding(mesh)
    if jax.process_count() == 1:
        return jax.device_put(batch, sharding)
    local = process_rows(batch)
    return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in local.items()}


def replicate(tree, mesh: Mesh):
    """Places parameters / optimizer state whole on every device of the mesh."""
    return jax.device_put(tree, replicated(mesh))


def jit_train_step(step_fn, mesh: Mesh, donate: bool = True):
    """jit of a `(state, batch, rng, position) -> (state, metrics)` step for the mesh.

    State, key, budget position and metrics replicated, the batch split over
    'data'. Donating the state lets XLA update parameters and optimizer
    moments in place.
    """
    rep, rows = replicated(mesh), data_sharding(mesh)
    return jax.jit(step_fn, in_shardings=(rep, rows, rep, rep), out_shardings=(rep, rep),
                   donate_argnums=(0,) if donate else ())
