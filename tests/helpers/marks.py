"""Which cases of a parametrized test run in `make test` and which wait for `make test-slow`.

The suite must stay near 12 minutes on 2 cores, but a check repeated over every encoder, decoder or option
is still worth having: the first `keep` cases (chosen to cover each kind once) run every time, the rest are
marked slow and run before an issue is resolved.
"""
from __future__ import annotations

import pytest


def slow_after(keep: int, cases: list) -> list:
    """`cases` (tuples or `pytest.param`s) with every case after the first `keep` marked slow."""
    if not 0 < keep <= len(cases):
        raise ValueError(f"keep={keep}: must be 1..{len(cases)}")
    out = []
    for i, case in enumerate(cases):
        if i < keep:
            out.append(case)
            continue
        if isinstance(case, tuple) and not hasattr(case, "values"):
            case = pytest.param(*case)
        elif not hasattr(case, "values"):
            case = pytest.param(case)
        out.append(pytest.param(*case.values, id=case.id, marks=(*case.marks, pytest.mark.slow)))
    return out
