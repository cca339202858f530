"""Runs the benchmark sections in one process and writes bench.json and bench.md.

Sections (`--only` picks some):
  train     every encoder-decoder pair's jitted train step at the benchmark
            shape, with the PyTorch peers and the matmul peak measured in the
            same run; the issue's targets are checked and recorded.
  scaling   step time as the length (32 -> 512) and the batch grow.
  decode    our cached greedy and beam-4 search per decoder kind (and greedy without the cache), against
            CTranslate2 fp32 / int8 and a PyTorch incremental peer on the same transformer weights.
  pipeline  the input pipeline's throughput and padding on ddtp_de_en, against
            the transformer train step of the same run.
  vectors   co-occurrence counting tokens/s and GloVe seconds per epoch on ddtp_de_en.

Whether the machine was busy (research/benchmarks/busy.py: the load average before the bench and after
each section, the CPU time other processes took before it and during each section, the matmul peak
before each timed pair and after the train section) is recorded as
`machine` in bench.json and said at the top of bench.md; with `refuse_busy` the run stops at the first
sign of it (busy.BusyMachine) and writes nothing.

`shape` and `precision` set the train and decode sections' model size (shape.SHAPES) and compute dtype;
the matmul peak is measured in that dtype. The PyTorch and CTranslate2 peers, the scaling sweep and
the CPU targets belong to the fp32 benchmark shape and run only with it.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

from research.benchmarks import busy, decode, peak, pipeline, report, torch_peer, train, vectors
from research.benchmarks.shape import SHAPES

log = logging.getLogger(__name__)
SECTIONS = ("train", "scaling", "decode", "pipeline", "vectors")


IDLE_S = 2.0  # the bench waits this long before it starts, measuring what other processes use meanwhile


def sections(shape: str, precision: str) -> tuple[str, ...]:
    """The sections a run may have: all of them at the fp32 benchmark shape, train and decode otherwise
    (scaling, pipeline and vectors, like the peers and the CPU targets, belong to the fp32 benchmark shape)."""
    return SECTIONS if {"shape": shape, "precision": precision} == train.CPU else ("train", "decode")


def run(only=SECTIONS, *, repeats: int = 5, rounds: int = train.ROUNDS, with_torch: bool = True, pairs=None,
        refuse_busy: bool = False, shape: str = "bench", precision: str = "fp32", idle_s: float = IDLE_S) -> dict:
    """All chosen sections -> the bench.json dict."""
    if shape not in SHAPES:
        raise ValueError(f"shape '{shape}' is not one of {', '.join(SHAPES)}")
    if precision not in peak.DTYPES:
        raise ValueError(f"precision '{precision}' is not one of {', '.join(peak.DTYPES)}")
    allowed = sections(shape, precision)
    if set(only) - set(allowed):
        raise ValueError(f"--shape {shape} --precision {precision} runs the {' and '.join(allowed)} sections only "
                         f"(scaling, pipeline and vectors belong to the fp32 benchmark shape)")
    cpu_bench = allowed == SECTIONS
    with_torch = with_torch and cpu_bench  # the peers train and decode in fp32 at the benchmark shape
    model_shape = SHAPES[shape]
    results = {"environment": report.environment(),
               "settings": {"repeats": repeats, "rounds": rounds, "shape_name": shape, "precision": precision,
                            "shape": vars(model_shape)}}
    loads, peaks, n_cores = [busy.load_sample("before the bench")], [], busy.cores()
    cpu = [busy.cpu_sample("start")]
    if idle_s > 0:
        time.sleep(idle_s)
        cpu.append(busy.cpu_sample("before the bench"))

    def check(section: str | None = None) -> None:
        if section:
            loads.append(busy.load_sample(f"after {section}"))
            cpu.append(busy.cpu_sample(f"during {section}"))
        spans = [busy.others(a, b) for a, b in zip(cpu, cpu[1:])]
        results["machine"] = busy.verdict(loads, peaks, n_cores, None if None in spans else spans)
        log.info("machine: %s", busy.line(results["machine"]))
        if refuse_busy:
            busy.refuse(results["machine"])

    check()
    start = time.perf_counter()
    if "train" in only:
        results["peak"] = peak.measure_peak(peak.default_sizes(), repeats=repeats, precision=precision,
                                            with_torch=with_torch and torch_peer.available())
        best_n = results["peak"]["jax"]["best_n"]
        peaks.append(results["peak"]["jax"]["flops_per_s"])

        def peak_now() -> float:  # at the size that was fastest, next to each timed pair
            peaks.append(peak.jax_matmul_peak((best_n,), repeats=repeats, dtype=peak.DTYPES[precision])["flops_per_s"])
            return peaks[-1]

        results["train"] = train.train_section(pairs or train.models.PAIRS, peak_flops=peak_now,
                                               with_torch=with_torch and torch_peer.available(), repeats=repeats,
                                               rounds=rounds, shape=model_shape, precision=precision)
        peak_now()  # and once after the last pair
        train.rescore(results["train"], max(peaks))  # every pair against the highest peak of the run
        # Each peer was timed in turns with its pair (train.time_pair); listed here for the report.
        results["torch"] = {train.PEERS[p]: row.pop("torch") for p, row in results["train"].items() if "torch" in row} or None
        results["targets"] = train.targets(results["train"], shape, precision)
        check("train")
    if "scaling" in only:
        results["scaling"] = train.scaling_section(repeats=max(2, repeats // 3))
        check("scaling")
    if "decode" in only:
        results["decode"] = decode.decode_section(repeats=max(2, repeats // 2), with_torch=with_torch,
                                                  with_ctranslate2=cpu_bench, precision=precision,
                                                  shape=dataclasses.replace(model_shape, batch=decode.DECODE_BATCH))
        check("decode")
    if "pipeline" in only:
        step = results.get("train", {}).get("transformer-transformer", {}).get("tokens_per_s")
        results["pipeline"] = pipeline.pipeline_section(step, repeats=repeats)
        results.setdefault("targets", {}).update(pipeline.targets(results["pipeline"]))
        check("pipeline")
    if "vectors" in only:
        results["vectors"] = {"glove": vectors.vectors_section()}
        check("vectors")
    results["wall_s"] = time.perf_counter() - start
    return results


def write(results: dict, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    js, md = out / "bench.json", out / "bench.md"
    js.write_text(json.dumps(results, indent=2, default=float) + "\n")
    md.write_text(report.markdown_table(results))
    return js, md
