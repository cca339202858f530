"""Renders a bench.json-like dict as markdown.

Expected layout (every section optional; rows are dicts of metrics):

    {"environment": environment(),            # recorded at bench time; else read now
     "train":    {"rnn-rnn": {"tokens_per_s": .., "vs_torch": .., "mfu": ..,
                              "compile_s": .., "step_ms": ..}, ...},
     "targets":  {name: {"metric", "min"/"max", "value", "met"}},
     "pipeline": {name: {metric: value}}, "decode": {...}, "scaling": {...}}

Targets are rows of their own section (`train.targets`, `pipeline.targets`).
Numbers that a later run must be compared with stay in the JSON; this module
only formats.
"""
from __future__ import annotations

import importlib.metadata
import os
import platform

from research.benchmarks import busy
from research.training.hardware import cpu_model

SECTIONS = ("train", "targets", "pipeline", "decode", "scaling", "vectors")
# Columns shown first, in this order, when present; any other metric follows.
PREFERRED = {"train": ("tokens_per_s", "vs_torch", "mfu_best_peak", "mfu", "compile_s", "step_ms"),
             "targets": ("metric", "min", "max", "value", "met"),
             "decode": ("pair", "cached_tokens_per_s", "beam4_tokens_per_s", "vs_torch", "vs_ctranslate2",
                        "vs_ctranslate2_int8", "uncached_tokens_per_s", "speedup"),
             "decode_peers": ("status", "greedy_tokens_per_s", "beam4_tokens_per_s", "greedy_ms", "beam4_ms",
                              "threads", "compute_type"),
             "decode_positions": ("overrides", "beam4_tokens_per_s", "vs_sinusoidal", "greedy_tokens_per_s",
                                  "beam4_ms", "greedy_ms")}
LIBRARIES = ("jax", "jaxlib", "flax", "optax", "torch")
PERCENT = ("mfu", "mfu_best_peak", "rounds_mfu_best_peak")  # fractions shown as percentages


def versions() -> dict[str, str]:
    """Installed versions, read from package metadata so torch is never imported."""
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass  # torch is optional
    return found


def environment() -> dict:
    """Machine, devices and library versions, to store next to the results."""
    import jax

    return {
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cores": len(os.sched_getaffinity(0)),
        "devices": [str(d) for d in jax.devices()],
        "versions": versions(),
    }


def fmt(value, column: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if column in PERCENT:
            return f"{100 * value:.1f}%"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(v, column) for v in value)
    return str(value).replace("|", "\\|")


def table(rows: dict, preferred=(), key: str = "name") -> str:
    """One markdown table: a row per key, a column per metric."""
    rows = {k: (r if isinstance(r, dict) else {"value": r}) for k, r in rows.items()}  # flat {metric: value} too
    seen = [c for r in rows.values() for c in r]
    columns = [c for c in preferred if c in seen] + [c for c in dict.fromkeys(seen) if c not in preferred]
    header = [key, *columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, row in rows.items():
        lines.append("| " + " | ".join([str(name)] + [fmt(row.get(c), c) for c in columns]) + " |")
    return "\n".join(lines)


def header(env: dict) -> str:
    libs = ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items())
    return "\n".join([
        f"- machine: {env.get('platform', '?')}; CPU: {env.get('cpu', '?')}; cores: {env.get('cores', '?')}",
        f"- devices: {fmt(env.get('devices', '?'))}",
        f"- libraries: {libs}",
    ])


def markdown_table(results: dict, title: str = "Benchmarks") -> str:
    """The whole report: environment header, then one table per present section."""
    env = results.get("environment") or environment()
    parts = [f"# {title}", header(env)]
    if results.get("machine"):
        parts.append(busy.line(results["machine"]))
    if results.get("peak"):
        parts.append(peak_line(results["peak"], results.get("torch")))
    for section in SECTIONS:
        if section == "decode" and results.get(section):
            parts += ["## decode", decode_tables(results[section])]
        elif results.get(section):
            key = "pair" if section == "train" else "name"
            parts += [f"## {section}", table(results[section], PREFERRED.get(section, ()), key)]
            if section == "targets":
                met = [r.get("met") for r in results[section].values()]
                parts.append(f"Targets met: {sum(m is True for m in met)} of {len(met)}"
                             + (f" ({sum(m is None for m in met)} not measured)" if None in met else "") + ".")
    return "\n\n".join(parts) + "\n"


def peak_line(peak: dict, torch: dict | None) -> str:
    """The MFU denominator and the PyTorch peers' speed, in one paragraph."""
    jax_peak = peak["jax"]
    line = (f"{peak.get('precision', 'fp32')} matmul peak (measured in this run, before the first pair): "
            f"{jax_peak['flops_per_s'] / 1e9:.1f} GFLOP/s (JAX, n={jax_peak['best_n']}); `mfu` is against the "
            f"peak measured right before each pair (`peak_gflop_per_s`), `mfu_best_peak` against the highest "
            f"peak of the run")
    if peak.get("torch"):
        line += f"; PyTorch {peak['torch']['flops_per_s'] / 1e9:.1f} GFLOP/s"
    if torch:
        line += "; PyTorch peers: " + ", ".join(f"{k} {v['tokens_per_s']:,.0f} tokens/s" for k, v in torch.items())
    return line + "."


def decode_tables(section: dict) -> str:
    """The decode section: its settings, a row per decoder kind, then the peers on the transformer model.

    A section of an older bench.json (rows keyed by pair, no settings or peers) renders as one table.
    """
    settings, peers, positions = section.get("settings"), section.get("peers"), section.get("positions")
    rows = {k: v for k, v in section.items() if k not in ("settings", "peers", "positions")}
    parts = []
    if settings:
        parts.append(f"Batch {settings['batch']}, source length {settings['source_len']}, "
                     f"{settings['output_len']} tokens decoded per row by every engine (EOS cannot end a row), "
                     f"beam {settings['beam']}, {settings.get('precision', 'fp32')}; "
                     f"{settings['threads']} threads for PyTorch and CTranslate2. "
                     "vs_*: our beam-4 tokens/s over the peer's.")
    parts.append(table(rows, PREFERRED["decode"], "decoder" if settings else "name"))
    if peers:
        pair = (settings or {}).get("peers_pair", "transformer-transformer")
        parts += [f"Peers on the same {pair} weights, each search timed in turns with ours:",
                  table(peers, PREFERRED["decode_peers"], "engine")]
    if positions:
        parts += ["Positions on the same model, our searches timed in turns (vs_sinusoidal: beam-4 tokens/s over "
                  "the sinusoidal model's):", table(positions, PREFERRED["decode_positions"], "positions")]
    return "\n\n".join(parts)
