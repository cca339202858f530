"""Is the machine busy? The bench's evidence that its ratios may be inflated, recorded beside them.

A benchmark on a shared machine measures the neighbours too, and not
evenly: with one other single-threaded process beside it, the same code on
the same quiet 2-core host reported the LSTM pair at 1.59 x the PyTorch
peer instead of 1.06 x, since PyTorch's OpenMP threads wait on a busy core
longer than XLA's do, and the matmul peak measured at another moment drops,
which inflates MFU. Two signals, both cheap and both measured in the run:

  load     the 1-minute load average, sampled before the bench starts and
           after each section, above the cores the bench may use (its
           affinity mask): more runnable threads than cores means someone
           waited, the bench or its peer;
  drift    the matmul peak, measured next to every timed pair, moving by
           more than DRIFT (10%) between its lowest and highest: the
           machine's speed changed under the bench.

`verdict` turns the samples into {"busy", "reasons", ...}; bench.json and
bench.md carry it, and `python -m research.bench --refuse-busy` stops with
the reason instead of writing numbers a busy machine made. Neither signal
proves a quiet machine (a neighbour that started and stopped between two
samples is missed), so a recorded result still names its host and time.
"""
from __future__ import annotations

import os

DRIFT = 0.10  # the largest relative spread of the peaks a quiet machine is allowed


class BusyMachine(RuntimeError):
    """Raised by `refuse` when --refuse-busy is given and the machine is busy."""


def cores() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def load_sample(when: str) -> dict:
    """{"when", "load_1m"}: the 1-minute load average now."""
    return {"when": when, "load_1m": os.getloadavg()[0]}


def drift(peaks: list[float]) -> float:
    """(highest - lowest) / highest of the peak measurements; 0.0 for fewer than two."""
    return (max(peaks) - min(peaks)) / max(peaks) if len(peaks) > 1 and max(peaks) > 0 else 0.0


def verdict(loads: list[dict], peaks: list[float], n_cores: int) -> dict:
    """The samples -> {"busy", "reasons", "cores", "loads", "peaks_gflop_per_s", "peak_drift"}."""
    reasons = [f"load average {s['load_1m']:.2f} {s['when']}, above the {n_cores} cores the bench uses"
               for s in loads if s["load_1m"] > n_cores]
    spread = drift(peaks)
    if spread > DRIFT:
        reasons.append(f"the matmul peak moved by {100 * spread:.0f}% during the run ({min(peaks) / 1e9:.1f} to "
                       f"{max(peaks) / 1e9:.1f} GFLOP/s), more than {100 * DRIFT:.0f}%")
    return {"busy": bool(reasons), "reasons": reasons, "cores": n_cores, "loads": loads,
            "peaks_gflop_per_s": [p / 1e9 for p in peaks], "peak_drift": spread}


def refuse(state: dict) -> None:
    """Raises BusyMachine naming the reasons when `state` (a verdict) says busy."""
    if state["busy"]:
        raise BusyMachine("the machine is busy, so the bench stops (--refuse-busy): " + "; ".join(state["reasons"])
                          + ". Run it again when nothing else runs, or without --refuse-busy to record the numbers "
                          "marked busy")


def line(state: dict) -> str:
    """bench.md's sentence about it."""
    loads = ", ".join(f"{s['load_1m']:.2f} {s['when']}" for s in state["loads"])
    peaks = state["peaks_gflop_per_s"]
    measured = (f"load average {loads} on {state['cores']} cores; matmul peak measured {len(peaks)} times, "
                f"spread {100 * state['peak_drift']:.1f}%")
    if state["busy"]:
        return f"**Busy machine: these ratios may be inflated.** {'; '.join(state['reasons'])}. ({measured}.)"
    return f"Quiet by both checks: {measured}."
