"""Two processes on 127.0.0.1 (2 CPU devices each, gloo collectives) train in
lockstep to the single-process, single-device result."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from research.config import REPO
from research.training.distributed import slurm_tasks, wanted
from research.training.sharding import MeshConfig
from tests.training.test_sharding import assert_same_run, train_on_mesh


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one_process(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    # Output goes to files, not pipes: a process blocked on a full pipe would never reach
    # the shutdown barrier that the other one waits at.
    logs = [(tmp_path / f"out{i}", tmp_path / f"err{i}") for i in range(2)]
    procs = []
    for i, (out, err) in enumerate(logs):
        with out.open("w") as o, err.open("w") as e:
            procs.append(subprocess.Popen([sys.executable, "-m", "tests.training.test_sharding", address, str(i), "2"],
                                          cwd=REPO, env=env, stdout=o, stderr=e))
    try:
        for p in procs:
            p.wait(timeout=180)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    outs = []
    for p, (out, err) in zip(procs, logs):
        assert p.returncode == 0, err.read_text()[-3000:]
        outs.append(json.loads(out.read_text().strip().splitlines()[-1]))
    assert [o["devices"] for o in outs] == [4, 4]  # one mesh over both processes' devices
    assert outs[0] == outs[1]  # lockstep: bit-identical losses and parameters
    assert_same_run(outs[0], train_on_mesh())


def test_when_to_start():
    assert not wanted(MeshConfig(), environ={})
    assert wanted(MeshConfig(coordinator_address="10.0.0.1:1234", num_processes=2, process_id=0), environ={})
    slurm = {"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4"}
    assert slurm_tasks(slurm) == 4 and wanted(MeshConfig(), environ=slurm)
    assert not wanted(MeshConfig(), environ={"SLURM_JOB_ID": "7", "SLURM_NTASKS": "1"})  # one task: stay local
    assert not wanted(MeshConfig(distributed="off"), environ=slurm)
