"""The real corpora in ../shared/data beside the repository (tests/conftest.py's SHARED).

A developer's checkout may lack them, and the tests that read them skip there. CI
runs with a copy of shared/ at ../shared and sets CI (CI=true), so there a
missing corpus is a failure: a test that reads it must never skip unseen.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import SHARED


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def shared_corpus(name: str, root: Path = SHARED) -> Path:
    """root/name, the folder of one shared corpus; skips the calling test when it is absent, fails under CI."""
    path = Path(root) / name
    if not path.is_dir():
        why = f"the corpus {name} is not at {path} (shared/data beside the repository)"
        if in_ci():
            pytest.fail(f"{why}, and CI={os.environ['CI']} requires it", pytrace=False)
        pytest.skip(why)
    return path
