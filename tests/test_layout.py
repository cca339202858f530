"""The test suite's own ground rules: JAX on CPU from the start, no test module importing
another (shared code lives in tests/helpers/), every folder a package, shared corpora that
never skip in CI."""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.corpus import shared_corpus

TESTS = Path(__file__).resolve().parent
# A string that is a test module's name, as in [sys.executable, "-m", "tests.training.test_x"].
RUN_AS_MODULE = re.compile(r"tests(?:\.\w+)*\.test_\w+")


def test_jax_runs_on_cpu_set_before_jax_was_imported():
    import jax

    # JAX copies JAX_PLATFORMS into its config when it is imported; set any later, the
    # config keeps its default (None) even though os.environ shows the value.
    assert os.environ["JAX_PLATFORMS"] == "cpu" and jax.config.jax_platforms == "cpu"
    assert {d.platform for d in jax.devices()} == {"cpu"}


def test_jax_ignores_jax_platforms_set_after_its_import():
    """Guards the test above: the config value proves the order, since a late setting does not reach it."""
    late = "import os, jax; os.environ['JAX_PLATFORMS'] = 'cpu'; print(jax.config.jax_platforms)"
    env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}
    out = subprocess.run([sys.executable, "-c", late], env=env, capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "None"


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(TESTS.parent).with_suffix("").parts)


def imported_test_modules(source: str, module: str) -> list[str]:
    """Test modules (tests.*.test_*) that the code of `module` imports or runs with `python -m`."""
    package = module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .x import y, from .. import z
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            found += [base] + [f"{base}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and RUN_AS_MODULE.fullmatch(node.value):
            found.append(node.value)
    out = set()
    for name in found:  # a.b.test_x.helper -> a.b.test_x
        parts = name.split(".")
        first = next((i for i, part in enumerate(parts) if part.startswith("test_")), None)
        if parts[0] == "tests" and first is not None:
            out.add(".".join(parts[: first + 1]))
    return sorted(out - {module})


def test_no_test_module_imports_another():
    offenders = {}
    for path in sorted(TESTS.rglob("*.py")):
        if path == Path(__file__).resolve():
            continue  # names test modules on purpose, in the planted cases below
        module = _module_name(path)
        if found := imported_test_modules(path.read_text(), module):
            offenders[module] = found
    assert offenders == {}, "move what they share to tests/helpers/"


def test_every_test_folder_is_a_package():
    """Without __init__.py pytest imports a folder's test files under their bare names, so two
    folders' test_config.py collide ("import file mismatch") and `tests.<folder>.x` is not importable."""
    missing = sorted(str(d.relative_to(TESTS)) for d in {p.parent for p in TESTS.rglob("*.py")}
                     if not (d / "__init__.py").exists())
    assert missing == []


def test_the_import_check_finds_every_form():
    """Guards the test above: each way one test module can reach another is caught."""
    planted = {
        "from tests.training.test_sharding import train_on_mesh": ["tests.training.test_sharding"],
        "import tests.test_reproduce": ["tests.test_reproduce"],
        "from tests.training import test_accumulate": ["tests.training.test_accumulate"],
        "from .test_accumulate import setup": ["tests.training.test_accumulate"],
        "from ..test_report import x": ["tests.test_report"],
        "cmd = [sys.executable, '-m', 'tests.training.test_sharding', '8']": ["tests.training.test_sharding"],
        "'''Docs may say `python -m tests.training.test_sharding`.'''": [],
        "from tests.helpers.sharding import train_on_mesh\nfrom tests.conftest import TINY": [],
    }
    for source, expected in planted.items():
        assert imported_test_modules(source, "tests.training.test_guard") == expected, source


def test_shared_corpus_skips_locally_and_fails_in_ci(tmp_path, monkeypatch):
    (tmp_path / "here").mkdir()
    monkeypatch.delenv("CI", raising=False)
    assert shared_corpus("here", root=tmp_path) == tmp_path / "here"
    with pytest.raises(pytest.skip.Exception, match="the corpus missing is not at"):
        shared_corpus("missing", root=tmp_path)
    for value in ("true", "1"):
        monkeypatch.setenv("CI", value)
        with pytest.raises(pytest.fail.Exception, match=f"CI={value} requires it"):
            shared_corpus("missing", root=tmp_path)
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        shared_corpus("missing", root=tmp_path)
