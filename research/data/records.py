"""Random access to a split of stored records, each read as an example when it is asked for.

Every reader (text pairs, labelled texts, tagged sentences; local corpora and
catalog datasets alike) opens a tfds data source and hands the pipeline a view
of it: `len`, `[i]`, and grain's batched `__getitems__`, which fetches the
records of a batch in one call where the source can. The view holds only the
source and what `_example` needs, so it pickles for grain's worker processes.
A reader subclasses `RecordView` and says in `_example` how one stored record
becomes {"source", "target", ...}, checking it as it goes.
"""
from __future__ import annotations

from typing import Any, Sequence


class RecordView:
    """A split's records (`records`: anything with `len` and `[i]`) read one example at a time."""

    def __init__(self, records: Any):
        self._records = records

    def __len__(self) -> int:
        return len(self._records)

    def _example(self, record: Any, index: int) -> dict:
        """The example stored as `record`, the split's `index`-th (0-based; for messages that name it)."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict:
        return self._example(self._records[int(index)], int(index))

    def __getitems__(self, indices: Sequence[int]) -> list[dict]:
        indices = [int(i) for i in indices]
        many = getattr(self._records, "__getitems__", None)
        records = many(indices) if many else [self._records[i] for i in indices]
        return [self._example(r, i) for r, i in zip(records, indices)]
