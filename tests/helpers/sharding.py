"""Training a tiny pair on a device mesh, in this process or in fresh ones.

The device count is fixed when JAX starts, so a run on N fake CPU devices
happens in a subprocess, `python -m tests.helpers.sharding [--eps EPS ...]
[coordinator process_id num_processes]`, which prints each run as one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

from research.config import REPO
from tests.helpers.steps import OVERRIDES, tiny_shape

STEPS = 4
TOL = 1e-5


def train_on_mesh(steps: int = STEPS, mesh_cfg=None, grad_accum: int = 1, pair=("transformer", "rnn"),
                  overrides=OVERRIDES) -> dict:
    """Trains a tiny pair on the mesh of `mesh_cfg`.

    Returns:
      {"losses": [steps], "params": {path: flattened values}, "devices": mesh size}.
    """
    import jax

    from research.benchmarks import models
    from research.training import sharding, state as train_state

    shape = tiny_shape()
    s = models.setup(*pair, shape, extra=list(overrides))
    mesh = sharding.make_mesh(mesh_cfg or sharding.MeshConfig())
    step = sharding.jit_train_step(s.step_fn(grad_accum=grad_accum), mesh)
    host = [models.random_batch(shape, seed=i) for i in range(steps)]
    first = sharding.shard_batch(host[0], mesh, grad_accum)
    state = sharding.replicate(train_state.create(s.model, s.tx, first, jax.random.PRNGKey(0)), mesh)
    losses = []
    for i, b in enumerate(host):
        state, m = step(state, sharding.shard_batch(b, mesh, grad_accum), jax.random.PRNGKey(100 + i), None)
        losses.append(float(m["loss"]))
    leaves = jax.tree_util.tree_leaves_with_path(jax.device_get(state.params))
    params = {jax.tree_util.keystr(p, simple=True, separator="/"): np.ravel(x).tolist() for p, x in leaves}
    return {"losses": losses, "params": params, "devices": len(mesh.devices.ravel())}


def with_eps(eps: float) -> list[str]:
    """OVERRIDES with Adam's eps replaced."""
    return [o for o in OVERRIDES if not o.startswith("optim.eps=")] + [f"optim.eps={eps}"]


def run_subprocess(devices: int, *args: str, env_extra=None, timeout: int = 240) -> list[dict]:
    """`main(args)` in a fresh process with `devices` CPU devices -> its runs, one per `--eps` given."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
           **(env_extra or {})}
    out = subprocess.run([sys.executable, "-m", "tests.helpers.sharding", *args], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def max_differences(a: dict, b: dict) -> dict[str, float]:
    """{parameter path: largest absolute difference} between two runs' parameters."""
    assert a["params"].keys() == b["params"].keys()
    return {k: float(np.max(np.abs(np.subtract(a["params"][k], b["params"][k])))) for k in a["params"]}


def assert_same_run(a: dict, b: dict, tol: float = TOL, skip: tuple[str, ...] = ()) -> None:
    """Losses and every parameter (but those whose path contains a `skip` entry) within `tol`."""
    np.testing.assert_allclose(a["losses"], b["losses"], atol=tol, rtol=0)
    apart = {k: d for k, d in max_differences(a, b).items() if d > tol and not any(s in k for s in skip)}
    assert not apart, f"parameters differ by more than {tol}: {apart}"


def main(argv: list[str]) -> None:
    """Prints one JSON line per `--eps` (one line with OVERRIDES' eps when none is given)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--eps", type=float, action="append", help="Adam's eps; repeat for several runs")
    parser.add_argument("cluster", nargs="*", help="coordinator_address process_id num_processes")
    args = parser.parse_args(argv)
    from research.training import distributed
    from research.training.sharding import MeshConfig

    cfg = MeshConfig()
    if args.cluster:
        address, pid, n = args.cluster
        cfg = MeshConfig(distributed="on", coordinator_address=address, process_id=int(pid), num_processes=int(n))
        distributed.initialize(cfg)
    for overrides in [with_eps(e) for e in args.eps] if args.eps else [OVERRIDES]:
        print(json.dumps(train_on_mesh(mesh_cfg=cfg, overrides=overrides)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
