"""Averages train-step metrics over a logging window and measures throughput."""
from __future__ import annotations


class Meter:
    """Sums step metrics between logs; `tokens_per_s` counts real target tokens
    over the time spent in steps (compilation included on the first window).

    Skipped steps (non-finite loss or gradient, see `steps.guarded`) are counted
    in `skipped`, not averaged: one NaN would otherwise hide a whole window.
    """

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, float] = {}
        self.n, self.skipped, self.seconds = 0, 0, 0.0

    def add(self, metrics: dict, seconds: float) -> None:
        self.seconds += seconds
        if metrics.get("skipped", 0.0):
            self.skipped += 1
            return
        for k, v in metrics.items():
            if k != "skipped":
                self.sums[k] = self.sums.get(k, 0.0) + float(v)
        self.n += 1

    def flush(self) -> dict:
        out = {k: v / self.n for k, v in self.sums.items() if k != "tokens"}
        out["tokens_per_s"] = self.sums.get("tokens", 0.0) / max(self.seconds, 1e-9)
        out["skipped"] = float(self.skipped)
        self.reset()
        return out
