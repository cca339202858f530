"""Hypothesis keeps its caches (character tables, source constants) in the temp dir, not in the repo.

The property tests use `database=None`, so nothing found is replayed from disk
either: a run depends on the code alone. HYPOTHESIS_STORAGE_DIRECTORY is read
at first use, which comes after collection; a value set by the caller wins.
"""
import os
import tempfile

os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "research-hypothesis"))
