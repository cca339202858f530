"""Several processes of one run, started together on 127.0.0.1 (multi-process tests)."""
from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from research.config import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_together(commands: list[list[str]], folder: Path, env: dict, timeout: int = 300) -> list[tuple[int, Path, Path]]:
    """Runs the commands at once and waits for all; -> (exit status, stdout file, stderr file) each.

    Output goes to files, not pipes: a process blocked on a full pipe would never
    reach the barrier the others wait at. A process still running at `timeout`
    is killed (the others are then stuck at a barrier too).
    """
    logs = [(folder / f"out{i}", folder / f"err{i}") for i in range(len(commands))]
    procs = []
    for cmd, (out, err) in zip(commands, logs):
        with out.open("w") as o, err.open("w") as e:
            procs.append(subprocess.Popen(cmd, cwd=REPO, env=env, stdout=o, stderr=e))
    try:
        for p in procs:
            p.wait(timeout=timeout)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, logs)]
