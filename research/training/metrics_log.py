"""Writes metrics as JSON lines (for scripts) and TensorBoard events (for people)."""
from __future__ import annotations

import json
import math
from pathlib import Path

from tensorboardX import SummaryWriter


class MetricsLog:
    """`metrics.jsonl`: one object per logged step and per evaluation,
    `{"step": ..., "split": "train"|"validation"|"test", "loss": ..., ...}`;
    the same scalars go to `tb/` as `<split>/<name>`."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.tb = SummaryWriter(str(Path(run_dir) / "tb"))

    def write(self, step: int, split: str, metrics: dict) -> None:
        clean = {k: float(v) for k, v in metrics.items()}
        with self.path.open("a") as f:
            f.write(json.dumps({"step": int(step), "split": split, **clean}) + "\n")
        for k, v in clean.items():
            if math.isfinite(v):
                self.tb.add_scalar(f"{split}/{k}", v, int(step))

    def text(self, step: int, tag: str, text: str) -> None:
        self.tb.add_text(tag, text, int(step))

    def close(self) -> None:
        self.tb.flush()
        self.tb.close()


def read(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def truncate(run_dir: Path, step: int) -> None:
    """Drops lines logged after `step` (a resumed run logs them again)."""
    path = Path(run_dir) / "metrics.jsonl"
    if path.exists():
        kept = [l for l in path.read_text().splitlines() if l.strip() and json.loads(l)["step"] <= step]
        path.write_text("".join(l + "\n" for l in kept))
