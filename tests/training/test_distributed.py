"""Two processes on 127.0.0.1 (2 CPU devices each, gloo collectives) train in
lockstep to the single-process, single-device result."""
from __future__ import annotations

import json
import os
import sys

import pytest

from research.training.distributed import slurm_tasks, wanted
from research.training.sharding import MeshConfig
from tests.helpers.processes import free_port, run_together
from tests.helpers.sharding import assert_same_run, train_on_mesh


@pytest.mark.slow  # `make test-slow`: 2026-12-03 durations, 30-380 s each
def test_two_processes_match_one_process(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    done = run_together([[sys.executable, "-m", "tests.helpers.sharding", address, str(i), "2"] for i in range(2)],
                        tmp_path, env, timeout=180)
    outs = []
    for status, out, err in done:
        assert status == 0, err.read_text()[-3000:]
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
