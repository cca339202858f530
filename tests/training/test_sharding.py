"""Data parallelism: 8 CPU devices train to the same losses and parameters as 1.

The device count is fixed when JAX starts, so the 8-device run happens in a
subprocess (`python -m tests.training.test_sharding DEVICES`), which prints
its losses and parameters as JSON; the 1-device reference runs in-process
through the same `train_on_mesh`. The distributed test reuses it too.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from research.config import REPO

STEPS = 4
TOL = 1e-5
# A small pair composed from the real config; dropout off (tiny_shape) so the runs are comparable.
# Adam's eps is raised from 1e-9: some gradients are zero in exact arithmetic (attention key
# biases: softmax ignores a constant shift), and Adam would blow their rounding noise, which
# differs with the reduction order over devices, up to a full learning-rate step.
OVERRIDES = ["optim.schedule=constant", "optim.warmup_steps=1", "optim.learning_rate=0.003", "optim.eps=1e-6"]


def tiny_shape():
    from research.benchmarks.flops import Shape

    return Shape(batch=13, src_len=8, tgt_len=7, d_model=32, d_ff=64, heads=2, layers=1, vocab=64, hidden=32,
                 channels=32, dropout=0.0)


def train_on_mesh(steps: int = STEPS, mesh_cfg=None, grad_accum: int = 1, pair=("transformer", "rnn")) -> dict:
    """Trains a tiny pair on the mesh of `mesh_cfg` -> {"losses", "params" (flattened), "devices"}.

    13 rows: not divisible by the device count, so the padding to whole rows
    per device is exercised too.
    """
    import jax

    from research.benchmarks import models
    from research.training import sharding, state as train_state

    shape = tiny_shape()
    s = models.setup(*pair, shape, extra=OVERRIDES)
    mesh = sharding.make_mesh(mesh_cfg or sharding.MeshConfig())
    step = sharding.jit_train_step(s.step_fn(grad_accum=grad_accum), mesh)
    host = [models.random_batch(shape, seed=i) for i in range(steps)]
    first = sharding.shard_batch(host[0], mesh, grad_accum)
    state = sharding.replicate(train_state.create(s.model, s.tx, first, jax.random.PRNGKey(0)), mesh)
    losses = []
    for i, b in enumerate(host):
        state, m = step(state, sharding.shard_batch(b, mesh, grad_accum), jax.random.PRNGKey(100 + i))
        losses.append(float(m["loss"]))
    flat = np.concatenate([np.ravel(x) for x in jax.tree.leaves(jax.device_get(state.params))])
    return {"losses": losses, "params": flat.tolist(), "devices": len(mesh.devices.ravel())}


def run_subprocess(devices: int, *args: str, env_extra=None, timeout: int = 240) -> dict:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
           **(env_extra or {})}
    out = subprocess.run([sys.executable, "-m", "tests.training.test_sharding", *args], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def assert_same_run(a: dict, b: dict) -> None:
    np.testing.assert_allclose(a["losses"], b["losses"], atol=TOL, rtol=0)
    np.testing.assert_allclose(a["params"], b["params"], atol=TOL, rtol=0)


@pytest.fixture(scope="module")
def single_device_run():
    return train_on_mesh()


def test_eight_devices_match_one(single_device_run):
    multi = run_subprocess(8)
    assert multi["devices"] == 8 and single_device_run["devices"] == 1
    assert single_device_run["losses"][-1] < single_device_run["losses"][0]  # it does learn
    assert_same_run(multi, single_device_run)


def test_mesh_from_config():
    from research.registry import ConfigError
    from research.training.sharding import MeshConfig, make_mesh

    assert make_mesh(MeshConfig(data=1)).shape == {"data": 1}
    with pytest.raises(ValueError, match="only 1 devices"):
        make_mesh(MeshConfig(data=2))
    with pytest.raises(ConfigError):
        MeshConfig(data=0)


def test_pad_rows_adds_empty_rows():
    from research.benchmarks.models import random_batch
    from research.training.sharding import pad_rows

    b = random_batch(tiny_shape())
    padded = pad_rows(b, 8)
    assert padded["source"].shape[0] == 16 and not padded["target_segments"][13:].any()
    assert pad_rows(padded, 8) is padded


if __name__ == "__main__":
    # python -m tests.training.test_sharding [coordinator process_id num_processes]
    from research.training import distributed
    from research.training.sharding import MeshConfig

    cfg = MeshConfig()
    if len(sys.argv) > 1:
        address, pid, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        cfg = MeshConfig(distributed="on", coordinator_address=address, process_id=pid, num_processes=n)
        distributed.initialize(cfg)
    print(json.dumps(train_on_mesh(mesh_cfg=cfg)))


@pytest.mark.slow  # a second full app run; `make test-slow`
def test_train_app_on_four_devices_matches_one(tmp_path):
    """The real `research.train` on a 4-device mesh logs the losses of the 1-device run."""
    import json
    import os
    import subprocess
    import sys

    from research.config import REPO
    from tests.conftest import tiny_overrides

    def run(name, devices):
        env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
        args = [*tiny_overrides("transformer", "transformer"), "trainer.max_steps=6", "trainer.log_every=2",
                "trainer.eval_every=6", "trainer.eval_examples=4", "data.max_train_examples=300",
                "trainer.checkpoint=false", "encoder.dropout=0", "decoder.dropout=0",
                f"tokenizer.cache_dir={tmp_path}/spm", f"hydra.run.dir={tmp_path}/{name}"]
        subprocess.run([sys.executable, "-m", "research.train", *args], cwd=REPO, env=env, check=True,
                       capture_output=True, timeout=600)
        return [json.loads(l) for l in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]

    one, four = run("one", 1), run("four", 4)
    assert [l["step"] for l in one] == [l["step"] for l in four]
    for a, b in zip(one, four):
        for key in ("loss", "grad_norm"):
            if key in a:
                assert abs(a[key] - b[key]) <= 1e-4 * max(1.0, abs(a[key])), (a, b)
    assert json.loads((tmp_path / "four" / "manifest.json").read_text())["devices"]["count"] == 4
