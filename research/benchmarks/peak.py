"""The fp32 matmul peak of this machine, measured in the same run as the models.

Model FLOPs utilisation (MFU) needs a denominator. A vendor's datasheet peak
is wrong for a shared CPU box (core count, clocks and neighbours vary), so
the peak is measured: the best median FLOP/s of a jitted square float32
`jnp.dot` over a few sizes, timed with the same harness as the train steps.
Small sizes are dominated by overhead and large ones may fall out of cache,
so the best of several sizes stands for "what this machine can do now".

PyTorch's peak is recorded for information only (its BLAS may differ from
XLA's); it never enters the MFU of a JAX model. It is measured by
`torch_peer.matmul_peak`, the one module allowed to import torch.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from research.benchmarks import torch_peer
from research.benchmarks.timing import time_fn

SIZES = (512, 1024, 2048)  # 2048^3 * 2 = 17 GFLOP: a fraction of a second on two cores


def matmul_flops(n: int) -> int:
    """FLOPs of one [n, n] x [n, n] product: n^2 outputs, n multiply-adds each."""
    return 2 * n**3


def best_of(per_size: dict[int, float]) -> dict:
    n = max(per_size, key=per_size.get)
    return {"flops_per_s": per_size[n], "best_n": n, "by_size": per_size}


def jax_matmul_peak(sizes=SIZES, *, warmup: int = 2, repeats: int = 5, min_time: float = 0.0, precision=None) -> dict:
    """Best median FLOP/s of a jitted float32 matmul on the default device.

    Args:
      sizes: square matrix sizes to try.
      precision: passed to `jnp.dot`; None is XLA's default, the same the
        models get (on GPUs that default may use TF32; pass
        `jax.lax.Precision.HIGHEST` for a strict fp32 peak).
    Returns:
      {"flops_per_s": best, "best_n": its size, "by_size": {n: FLOP/s}}.
    """
    dot = jax.jit(lambda a, b: jnp.dot(a, b, precision=precision))
    per_size = {}
    for n in sizes:
        ka, kb = jax.random.split(jax.random.key(n))
        a = jax.random.normal(ka, (n, n), jnp.float32)
        b = jax.random.normal(kb, (n, n), jnp.float32)
        t = time_fn(lambda: dot(a, b).block_until_ready(), warmup=warmup, repeats=repeats, min_time=min_time)
        per_size[n] = matmul_flops(n) / t["median_s"]
    return best_of(per_size)


def measure_peak(sizes=SIZES, *, repeats: int = 5, with_torch: bool = True) -> dict:
    """{"jax": ..., "torch": ... or None, "device": str of the JAX device}."""
    return {
        "jax": jax_matmul_peak(sizes, repeats=repeats),
        "torch": torch_peer.matmul_peak(sizes, repeats=repeats) if with_torch else None,
        "device": str(jax.devices()[0]),
    }
