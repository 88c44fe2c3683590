"""The data layer's error and the pieces of its messages (file, rows as line numbers, a value)."""

from __future__ import annotations


class DataError(ValueError):
    """Input data that cannot be used; the message names file, rows and column."""


def fail(path, message: str) -> DataError:
    return DataError(f"{path}: {message}")


def show(value, width: int = 40) -> str:
    """A cell's value for a message: quoted, and cut short (a name may be 10,000 characters)."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 5] + "…" + text[-4:]


def line_numbers(rows) -> str:
    """``rows`` (line numbers in the file, header = line 1) as "row 3" or "rows 3, 4, …"."""
    rows = sorted({int(r) for r in rows})
    shown = ", ".join(str(r) for r in rows[:8])
    return f"row{'s' if len(rows) > 1 else ''} {shown}{' …' if len(rows) > 8 else ''}"
