"""An exclusive lock between processes, for one-time work on a shared cache.

Why: jobs of a sweep (or pytest workers) that start together on a fresh
machine all find a corpus unprepared and all prepare it; tfds then renames
each job's temporary folder onto the same final one, and every job but the
first fails ("Destination ... already exists"). Preparing under this lock
makes the others wait and then read what the first wrote.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import re


def lock_path(directory: str, name: str) -> str:
    """A lock file in `directory` for the thing called `name` (any characters)."""
    return os.path.join(directory, "." + re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + ".lock")


@contextlib.contextmanager
def exclusive(path: str):
    """Holds an flock on `path` (created if missing) for the body; released on exit, even by a crash."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
