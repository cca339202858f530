"""What a run computed on: CPU model and instruction-set flags, cores, accelerator.

Float results depend on it: the same commit, config and seed gave the demo
validation BLEU 7.05 on an Intel Xeon host and 7.18 on an AMD EPYC one (as
reported in the project's issue 13; XLA picks kernels, and with them reduction
orders, by instruction set). The manifest records
it, and `research.reproduce` compares exactly only where it matches.
"""
from __future__ import annotations

import hashlib
import os
import platform


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ({} where there is none)."""
    out: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor's block ends here
                key, _, value = line.partition(":")
                out.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return out


def cpu_model() -> str:
    """The 'model name' of /proc/cpuinfo, or platform's guess elsewhere."""
    return _cpuinfo().get("model name") or platform.processor() or "unknown"


def describe(devices: list | None = None) -> dict:
    """{"cpu", "cpu_flags" (sorted, space-separated), "cores", "accelerator" (None on CPU)}.

    `devices`: jax.devices() of the run; its first device names the accelerator.
    """
    info = _cpuinfo()
    flags = info.get("flags") or info.get("Features") or ""  # x86 | ARM
    accelerator = None
    if devices and devices[0].platform != "cpu":
        accelerator = f"{len(devices)} x {devices[0].device_kind}"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu_model(), "cpu_flags": " ".join(sorted(flags.split())), "cores": cores, "accelerator": accelerator}


def fingerprint(recorded: dict) -> str:
    """8 hex digits of what `differences` compares: two hosts with one CPU model name but other flags differ here.

    A sweep's report prints it beside the model name, so that two results from
    hosts that both call themselves 'AMD EPYC' can be told apart from the report alone.
    """
    key = [recorded.get("cpu"), recorded.get("accelerator"), recorded.get("cores"),
           " ".join(sorted((recorded.get("cpu_flags") or "").split()))]
    return hashlib.sha256(repr(key).encode()).hexdigest()[:8]


def differences(recorded: dict, current: dict) -> list[str]:
    """What differs between two `describe()` results, one line each ([] when nothing does)."""
    out = []
    for key in ("cpu", "accelerator", "cores"):
        if recorded.get(key) != current.get(key):
            out.append(f"{key}: {recorded.get(key)} -> {current.get(key)}")
    a, b = set((recorded.get("cpu_flags") or "").split()), set((current.get("cpu_flags") or "").split())
    if a != b:
        only = lambda s: " ".join(sorted(s)[:8]) + (" ..." if len(s) > 8 else "")
        out.append(f"cpu_flags: {len(a - b)} only before ({only(a - b)}), {len(b - a)} only now ({only(b - a)})")
    return out
