#!/usr/bin/env bash
# The accelerator benchmark (issue 19, item 6) as one prepared command for a lent GPU machine: the train
# and decode sections at the large shape (research/benchmarks/shape.py) in bf16, model FLOPs utilisation
# against the GPU's bf16 matmul peak measured in the same run. From the repository root:
#
#   bash experiments/device/bench_gpu.sh OUT_DIR
#
# With the device tool: first, here, `bash experiments/device/wheels.sh` (the packages the machine lacks),
# then run `bash experiments/device/bench_gpu.sh $OUT` with `.whl` in `carry` and timeout_s 600.
# BENCH_FLAGS replaces the bench's flags (for a CPU check of this script at the small shape).
# The first thing printed is what is missing, so that no device time goes to a run that cannot start.
# Checked on the CPU only (README, "On an accelerator"): with Python 3.12.1, the image's JAX 0.11.2 and
# its other packages plus .whl, at the bench shape in bf16. At the large shape XLA plans 42.5 GB of
# temporaries for the transformer step (13.1 cnn, 19.5 rnn) plus 2.5 GB of arguments (state, batch):
# under JAX's default 75% of an 80 GB H100.
set -euo pipefail
out=${1:?usage: bash experiments/device/bench_gpu.sh OUT_DIR}
cd "$(dirname "$0")/../.."
mkdir -p "$out"
PYTHON=${PYTHON:-python3}
if [ -d .whl ]; then
  $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
$PYTHON - <<'PY'
import importlib.util, sys
needed = ("jax", "flax", "optax", "orbax.checkpoint", "hydra", "omegaconf", "grain", "tensorflow_datasets",
          "sentencepiece", "sacrebleu", "rouge_score", "seqeval", "sklearn", "scipy")
missing = [m for m in needed if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"missing Python packages: {', '.join(missing)} (bash experiments/device/wheels.sh, then carry .whl)")
import jax
print("jax", jax.__version__, "devices", jax.devices(), flush=True)
PY
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$out/gpu.csv"
else
  echo "no nvidia-smi: the GPU's name comes from jax.devices() above only"
fi
# rounds 1: no PyTorch peer runs beside ours here; the repeats give the median step.
read -r -a flags <<< "${BENCH_FLAGS:---shape large --precision bf16 --pairs transformer-transformer,cnn-cnn,rnn-rnn}"
$PYTHON -m research.bench "${flags[@]}" --no-torch --rounds 1 --out "$out" 2>&1 | tee "$out/bench.log"
