"""The matmul peak of this machine, measured in the same run as the models.

Model FLOPs utilisation (MFU) needs a denominator. A vendor's datasheet peak
is wrong for a shared CPU box (core count, clocks and neighbours vary), so
the peak is measured: the best median FLOP/s of a jitted square `jnp.dot`
over a few sizes, in the dtype the models compute in (float32, or bfloat16
for `--precision bf16`), timed with the same harness as the train steps.
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
# On an accelerator the small sizes measure launch overhead: 8192^3 * 2 = 1.1 TFLOP, about 1.4 ms at
# the 790 TFLOP/s an H200 reached in bf16 (/work/.library/device/KINDS.md).
ACCELERATOR_SIZES = (2048, 4096, 8192)
DTYPES = {"fp32": jnp.float32, "bf16": jnp.bfloat16}  # trainer.precision -> the matmul's dtype


def default_sizes() -> tuple[int, ...]:
    """The sizes to try on the default device: SIZES on a CPU, ACCELERATOR_SIZES elsewhere."""
    return SIZES if jax.default_backend() == "cpu" else ACCELERATOR_SIZES


def matmul_flops(n: int) -> int:
    """FLOPs of one [n, n] x [n, n] product: n^2 outputs, n multiply-adds each."""
    return 2 * n**3


def best_of(per_size: dict[int, float]) -> dict:
    n = max(per_size, key=per_size.get)
    return {"flops_per_s": per_size[n], "best_n": n, "by_size": per_size}


def jax_matmul_peak(sizes=SIZES, *, warmup: int = 2, repeats: int = 5, min_time: float = 0.0, precision=None,
                    dtype=jnp.float32) -> dict:
    """Best median FLOP/s of a jitted matmul on the default device.

    Args:
      sizes: square matrix sizes to try.
      dtype: of both operands (and the product).
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
        a = jax.random.normal(ka, (n, n), dtype)
        b = jax.random.normal(kb, (n, n), dtype)
        t = time_fn(lambda: dot(a, b).block_until_ready(), warmup=warmup, repeats=repeats, min_time=min_time)
        per_size[n] = matmul_flops(n) / t["median_s"]
    return best_of(per_size)


def measure_peak(sizes=SIZES, *, repeats: int = 5, with_torch: bool = True, precision: str = "fp32") -> dict:
    """{"jax": ..., "torch": ... or None, "device": str of the JAX device, "precision"}.

    The PyTorch peak is float32 only (its peers train in float32): `with_torch` must be off for bf16.
    """
    if with_torch and precision != "fp32":
        raise ValueError(f"the PyTorch peak is measured in fp32 only, not {precision}")
    return {
        "jax": jax_matmul_peak(sizes, repeats=repeats, dtype=DTYPES[precision]),
        "torch": torch_peer.matmul_peak(sizes, repeats=repeats) if with_torch else None,
        "device": str(jax.devices()[0]),
        "precision": precision,
    }
