#!/usr/bin/env bash
# Builds .whl/, the Python packages the accelerator benchmark needs and a lent GPU machine lacks, for
# `experiments/device/bench_gpu.sh` to install there (that machine reaches no package registry).
#
# Run HERE, in the repository root, where PyPI is reachable:  bash experiments/device/wheels.sh
# Then add `.whl` to the device call's `carry` (it must stay under the 64 MiB a call may carry).
#
# The list: the project's runtime packages (pyproject.toml, same pins) that the machine's image did not
# hold when /work/.library/device/KINDS.md was read (2026-11-17), plus what they need that it also lacked.
# Its Python is 3.12 (KINDS.md), so the wheels are fetched for CPython 3.12 on manylinux x86-64.
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf .whl && mkdir .whl
PIP=${PIP:-python3 -m pip}
BINARY=(  # wheels on PyPI for CPython 3.12
  hydra-core==1.3.8 omegaconf==2.3.1 grain==0.2.18 array_record==0.8.6 tensorflow-datasets==4.9.10
  tensorflow-metadata==1.21.0 immutabledict==4.3.1 toml==0.10.2 portpicker==1.6.0 defusedxml==0.7.1
  nltk==3.10.4 dm-tree==0.1.10 simple-parsing==0.1.9 docstring-parser==0.18.0 termcolor==3.3.0
  googleapis-common-protos==1.76.0
)
SOURCE_ONLY=(  # published as sources only: built here into pure-Python wheels
  antlr4-python3-runtime==4.9.3 rouge-score==0.1.2 seqeval==1.2.2 promise==2.3
)
PLATFORMS=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  PLATFORMS+=(--platform "$p")
done
$PIP download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${PLATFORMS[@]}" \
  -d .whl "${BINARY[@]}"
$PIP wheel --quiet --no-deps -w .whl "${SOURCE_ONLY[@]}"
du -sh .whl
ls .whl
