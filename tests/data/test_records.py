"""research/data/records.py: the view every reader hands the pipeline."""
from __future__ import annotations

import pickle

from research.data.records import RecordView


class Numbered(RecordView):
    def _example(self, record, index):
        return {"source": record, "target": str(index)}


class Batched:
    """A source with a batched read that counts its calls, as tfds's array_record sources have one."""

    def __init__(self, items):
        self.items, self.calls = items, []

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        self.calls.append(("one", i))
        return self.items[i]

    def __getitems__(self, indices):
        self.calls.append(("many", list(indices)))
        return [self.items[i] for i in indices]


def test_one_and_many_examples_carry_their_own_index():
    view = Numbered(["a", "b", "c", "d"])
    assert len(view) == 4
    assert view[2] == {"source": "c", "target": "2"}
    assert view.__getitems__([3, 0, 3]) == [{"source": "d", "target": "3"}, {"source": "a", "target": "0"},
                                            {"source": "d", "target": "3"}]


def test_a_batch_is_one_read_where_the_source_can_and_numpy_indices_are_ints():
    import numpy as np  # noqa: PLC0415

    source = Batched(["a", "b", "c"])
    view = Numbered(source)
    assert view.__getitems__(np.array([2, 1])) == [{"source": "c", "target": "2"}, {"source": "b", "target": "1"}]
    assert source.calls == [("many", [2, 1])] and all(type(i) is int for i in source.calls[0][1])
    assert view[np.int64(0)] == {"source": "a", "target": "0"} and source.calls[-1] == ("one", 0)


def test_a_view_pickles_for_grain_workers():
    view = pickle.loads(pickle.dumps(Numbered(["x", "y"])))
    assert view.__getitems__([1]) == [{"source": "y", "target": "1"}]
