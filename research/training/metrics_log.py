"""`metrics.jsonl` (for scripts) and TensorBoard events (for people): the one writer and the one reader."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

NAME = "metrics.jsonl"


class MetricsLog:
    """`metrics.jsonl`: one object per logged step and per evaluation,
    `{"step": ..., "split": "train"|"validation"|"test", "loss": ..., ...}`;
    the same scalars go to `tb/` as `<split>/<name>`.

    With `enabled=False` (every process but the first of a multi-process run)
    nothing is written and no TensorBoard writer is opened, so each file of a
    run directory has one writer.
    """

    def __init__(self, run_dir: Path, enabled: bool = True):
        self.path = Path(run_dir) / NAME
        self.enabled = enabled
        self._tb = None
        if enabled:
            from tensorboardX import SummaryWriter  # noqa: PLC0415 - readers of the log do not need it

            self._tb = SummaryWriter(str(Path(run_dir) / "tb"))

    def write(self, step: int, split: str, metrics: dict) -> None:
        if not self.enabled:
            return
        clean = {k: float(v) for k, v in metrics.items()}
        with self.path.open("a") as f:
            f.write(json.dumps({"step": int(step), "split": split, **clean}) + "\n")
        for k, v in clean.items():
            if math.isfinite(v):
                self._tb.add_scalar(f"{split}/{k}", v, int(step))

    def text(self, step: int, tag: str, text: str) -> None:
        if self.enabled:
            self._tb.add_text(tag, text, int(step))

    def image(self, step: int, tag: str, image: np.ndarray) -> None:
        """An RGB image [height, width, 3] uint8."""
        if self.enabled:
            self._tb.add_image(tag, image, int(step), dataformats="HWC")

    def close(self) -> None:
        if self.enabled:
            self._tb.flush()
            self._tb.close()


def read(run_dir: Path) -> list[dict]:
    """The rows of a run's metrics.jsonl in step order ([] when there is none).

    A resumed run logs again the steps between its checkpoint and the kill;
    `truncate` drops them when it resumes, and should a file still hold a
    (split, step) twice (a run stopped between the two), the last row counts.
    """
    path = Path(run_dir) / NAME
    if not path.exists():
        return []
    last: dict[tuple[str, int], dict] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            key = (row["split"], int(row["step"]))
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}:{number}: not a metrics row ({type(e).__name__}: {e})") from None
        last[key] = row
    return sorted(last.values(), key=lambda r: r["step"])


def truncate(run_dir: Path, step: int) -> None:
    """Drops lines logged after `step` (a resumed run logs them again)."""
    path = Path(run_dir) / NAME
    if path.exists():
        kept = [l for l in path.read_text().splitlines() if l.strip() and json.loads(l)["step"] <= step]
        path.write_text("".join(l + "\n" for l in kept))
