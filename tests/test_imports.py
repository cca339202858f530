"""What importing a module pulls in: inference stays free of training code, no module shadows the standard library."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from research.config import REPO

TRAINING_ONLY = ("research.training.loop", "research.training.hooks", "research.training.preemption",
                 "research.training.metrics_log", "tensorboardX")


@pytest.mark.parametrize("module", ["research.run_dir", "research.translate", "research.evaluate"])
def test_inference_imports_no_training_code(module):
    code = f"import sys, json, {module}; print(json.dumps([m for m in {list(TRAINING_ONLY)!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_no_module_shadows_the_standard_library():
    stems = {p.stem for p in Path(REPO, "research").rglob("*.py")} - {"__init__", "__main__"}
    assert sorted(stems & set(sys.stdlib_module_names)) == []
