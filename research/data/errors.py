"""The one exception the data layer raises for bad or missing input."""
from __future__ import annotations


class DataError(ValueError):
    """Input data is missing or malformed.

    The message names the file (and line, where there is one) and says what to
    do, so a run stops with one readable line instead of a stack of tracebacks
    from deep inside tfds or grain.
    """
