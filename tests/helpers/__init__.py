"""Helpers shared by the tests; test modules import these, never each other.

  corpus.py    the shared corpora beside the repository: skipped locally when absent, a failure in CI
  models.py    tiny real-data models and batches for the model and decoding tests
  runs.py      run directories: fake ones for the report tools, short and tiny real trainings
  steps.py     a tiny pair's train step on random batches, set up for exact comparisons
  sharding.py  training on a device mesh; also run as `python -m tests.helpers.sharding`

tests/test_layout.py checks that no test module imports another.
"""
