"""The Markdown pieces that research.report and research.scaling write their tables with, so both format
numbers, p-values and intervals alike."""
from __future__ import annotations


def number(v, digits: int = 2) -> str:
    """A cell: floats to `digits` places with thousands separators, ints with separators, None and "" empty."""
    if v is None or v == "":
        return ""
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def p_value(p: float | None) -> str:
    """A p-value to 4 places, "< 0.0001" below them (where 0.0000 would read as impossible); empty for none."""
    return "" if p is None else ("< 0.0001" if p < 0.0001 else f"{p:.4f}")


def interval(low: float | None, high: float | None, digits: int = 2) -> str:
    return "" if low is None else f"[{low:.{digits}f}, {high:.{digits}f}]"


def table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    return "\n".join(out + ["| " + " | ".join(r) + " |" for r in rows])
