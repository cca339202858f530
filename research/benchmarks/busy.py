"""Is the machine busy? The bench's evidence that its ratios may be inflated, recorded beside them.

A benchmark on a shared machine measures the neighbours too, and not
evenly: with one other single-threaded process beside it, the same code on
the same quiet 2-core host reported the LSTM pair at 1.59 x the PyTorch
peer instead of 1.06 x, since PyTorch's OpenMP threads wait on a busy core
longer than XLA's do, and the matmul peak measured at another moment drops,
which inflates MFU. Three signals, all cheap and all measured in the run:

  load     the 1-minute load average before the bench starts, above the
           cores the bench may use (its affinity mask): more runnable
           threads than cores means someone would wait;
  others   the CPU time the machine spent on other processes while each
           section ran (all cores' busy and stolen time in /proc/stat, less
           this process's own), more than OTHERS (a quarter of a core) on
           average. /proc/stat covers every core of the machine, so on one
           with more cores than the bench may use, work on the others
           counts too (it still shares the memory and the caches). The
           load average after a section cannot say this: it
           counts the bench's own threads, and the vectors section alone
           pushed it to 2.09-2.22 on an otherwise quiet 2-core host
           (2026-12-06), flagging both full runs of that morning. Where there is no
           /proc/stat, the load after each section stands in for it;
  drift    the matmul peak, measured next to every timed pair, moving by
           more than DRIFT (10%) between its lowest and highest: the
           machine's speed changed under the bench.

`verdict` turns the samples into {"busy", "reasons", ...}; bench.json and
bench.md carry it, and `python -m research.bench --refuse-busy` stops with
the reason instead of writing numbers a busy machine made. No signal
proves a quiet machine (a neighbour that started and stopped between two
samples is missed by the load, a faster neighbour is not seen by the
peaks), so a recorded result still names its host and time.
"""
from __future__ import annotations

import os
import time

DRIFT = 0.10  # the largest relative spread of the peaks a quiet machine is allowed
OTHERS = 0.25  # cores other processes may use on average while a section runs (a shell, a daemon)
PROC_STAT = "/proc/stat"


class BusyMachine(RuntimeError):
    """Raised by `refuse` when --refuse-busy is given and the machine is busy."""


def cores() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def load_sample(when: str) -> dict:
    """{"when", "load_1m"}: the 1-minute load average now."""
    return {"when": when, "load_1m": os.getloadavg()[0]}


def cpu_sample(when: str) -> dict:
    """{"when", "wall_s", "busy_s", "own_s"}: all cores' busy seconds so far (user, nice, system, irq,
    softirq and steal in /proc/stat; None where there is none) and this process's CPU seconds (all its
    threads, and its children that ended)."""
    busy = None
    if os.path.exists(PROC_STAT):
        with open(PROC_STAT) as f:
            fields = f.readline().split()
        if fields[0] != "cpu" or len(fields) < 9:
            raise ValueError(f"{PROC_STAT}: the first line is not the 'cpu' total: {' '.join(fields)}")
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
        busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    t = os.times()
    return {"when": when, "wall_s": time.monotonic(), "busy_s": busy,
            "own_s": t.user + t.system + t.children_user + t.children_system}


def others(start: dict, end: dict) -> dict | None:
    """{"when", "cores"}: the cores other processes used on average between two `cpu_sample`s; None without /proc/stat."""
    if start["busy_s"] is None or end["busy_s"] is None:
        return None
    wall = max(end["wall_s"] - start["wall_s"], 1e-9)
    cores = ((end["busy_s"] - start["busy_s"]) - (end["own_s"] - start["own_s"])) / wall
    return {"when": end["when"], "cores": max(cores, 0.0)}  # tick rounding can make a quiet span slightly negative


def drift(peaks: list[float]) -> float:
    """(highest - lowest) / highest of the peak measurements; 0.0 for fewer than two."""
    return (max(peaks) - min(peaks)) / max(peaks) if len(peaks) > 1 and max(peaks) > 0 else 0.0


def verdict(loads: list[dict], peaks: list[float], n_cores: int, spans: list[dict] | None = None) -> dict:
    """The samples -> {"busy", "reasons", "cores", "loads", "others", "peaks_gflop_per_s", "peak_drift"}.

    `spans`: `others` of each section (and of a short idle wait before the bench). Given, the load
    counts only before the bench, where the bench's own threads are not in it; None (no
    /proc/stat), every load sample counts.
    """
    counted = loads if spans is None else [s for s in loads if s["when"] == "before the bench"]
    reasons = [f"load average {s['load_1m']:.2f} {s['when']}, above the {n_cores} cores the bench uses"
               for s in counted if s["load_1m"] > n_cores]
    reasons += [f"other processes used {o['cores']:.2f} cores on average {o['when']}, more than {OTHERS}"
                for o in spans or () if o["cores"] > OTHERS]
    spread = drift(peaks)
    if spread > DRIFT:
        reasons.append(f"the matmul peak moved by {100 * spread:.0f}% during the run ({min(peaks) / 1e9:.1f} to "
                       f"{max(peaks) / 1e9:.1f} GFLOP/s), more than {100 * DRIFT:.0f}%")
    return {"busy": bool(reasons), "reasons": reasons, "cores": n_cores, "loads": loads, "others": spans,
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
    measured = f"load average {loads} on {state['cores']} cores; "
    if state.get("others"):
        measured += "cores used by other processes " + ", ".join(f"{o['cores']:.2f} {o['when']}" for o in state["others"]) + "; "
    measured += f"matmul peak measured {len(peaks)} times, spread {100 * state['peak_drift']:.1f}%"
    if state["busy"]:
        return f"**Busy machine: these ratios may be inflated.** {'; '.join(state['reasons'])}. ({measured}.)"
    return f"Quiet by every check: {measured}."
