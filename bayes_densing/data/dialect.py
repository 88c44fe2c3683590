"""The file's dialect: its separator, and its decimal mark (a spreadsheet export may use commas).

Also refuses rows with more cells than the header, naming the likely cause (a decimal comma in a
comma-separated file, a stray separator).
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from pathlib import Path

import pandas as pd

from bayes_densing.data import registry as benchmark_registry
from bayes_densing.data.columns import METADATA, NUMERIC, column_name, known_column
from bayes_densing.data.messages import fail, line_numbers, show

SEPARATORS = {",": "comma", ";": "';'", "\t": "tab"}    # the separators read, by name

# numbers as written, to tell a decimal mark from a thousands separator
_INTEGER = r"[+-]?\d+(?:[eE][+-]?\d+)?"
_POINT = r"[+-]?(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?"             # 0.62, 1.5e9
_COMMA = r"[+-]?(?:\d+,\d*|,\d+)(?:[eE][+-]?\d+)?"               # 0,62, 1,5E+09
_GROUPED = r"[+-]?[1-9]\d{0,2}[.,]\d{3}"                          # 1.234 / 1,234: which separator?
_THOUSANDS = {",": r"[+-]?\d{1,3}(?:,\d{3})+\.\d*|[+-]?\d{1,3}(?:,\d{3}){2,}",    # 1,234.5
              ".": r"[+-]?\d{1,3}(?:\.\d{3})+,\d*|[+-]?\d{1,3}(?:\.\d{3}){2,}"}   # 1.234,5
_MARK_NAME = {".": "decimal point", ",": "decimal comma"}


def separator(text: str) -> str:
    """The separator that splits the header into the most known column names (',' on a tie);
    when no candidate yields one (not a scores file, or a misspelt header), csv.Sniffer's guess
    among ',', ';' and tab, so that the error names the columns as the user wrote them."""
    known = {}
    for sep in SEPARATORS:
        try:
            rows = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
            header = next((row for row in rows if row), [])
        except csv.Error:
            header = []
        known[sep] = sum(known_column(c) for c in header)
    best = max(known, key=known.get)              # the first of equals: ',' before ';' before tab
    if known[best]:
        return best
    sample = "\n".join(text.splitlines()[:20])
    try:
        return csv.Sniffer().sniff(sample, delimiters="".join(SEPARATORS)).delimiter
    except csv.Error:
        return ","


def check_field_counts(text: str, sep: str, path: Path) -> None:
    """Refuse a row with more cells than the header (pandas would report a tokenizing error, or
    silently take the first column as an index when every row has one cell too many)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, skipinitialspace=True)
    header, start = None, 1
    try:
        for row in reader:
            if row:                                         # blank lines are skipped, as pandas does
                if header is None:
                    header = row
                elif len(row) > len(header):
                    raise fail(path, _extra_cells(row, header, sep, start))
            start = reader.line_num + 1
    except csv.Error:
        return                                              # pandas reports it, with its reason


def _plausible(name: str, cell: str, numeric: bool) -> bool:
    cell = cell.strip()
    if not cell:
        return True
    if numeric:
        return re.fullmatch(rf"{_INTEGER}|{_POINT}|{_COMMA}", cell) is not None
    if name == "release_date":
        return re.match(r"\d{4}", cell) is not None
    if name == "role":
        return cell.lower() in ("reference", "target")
    return True


def _extra_cells(row: list[str], header: list[str], sep: str, line: int) -> str:
    n, m = len(row), len(header)
    names = [column_name(c) for c in header]
    wide = "benchmark" not in names and "score" not in names
    numeric = [c in NUMERIC or benchmark_registry.lookup(c) is not None
               or (wide and c not in METADATA) for c in names]
    if sep == "," and n - m <= 3:
        # a decimal comma splits "0,62" into the cells "0" and "62": find the joins that give a
        # row of the header's length whose every cell fits its column; name the column only
        # when a single way of joining fits (in "1,2,5" the comma may be either one)
        joints = [i for i in range(n - 1) if re.fullmatch(r"[+-]?\d+", row[i].strip())
                  and re.fullmatch(r"\d+(?:[eE][+-]?\d+)?", row[i + 1].strip())]
        fits = []
        for joins in itertools.combinations(joints, n - m):
            if any(b - a < 2 for a, b in zip(joins, joins[1:])):
                continue
            cells, joined, i = [], [], 0
            while i < n:
                if i in joins:
                    joined.append(len(cells))
                    cells.append(f"{row[i].strip()},{row[i + 1].strip()}")
                    i += 2
                else:
                    cells.append(row[i])
                    i += 1
            if (all(numeric[j] for j in joined)
                    and all(_plausible(c, v, num) for c, v, num in zip(names, cells, numeric))):
                fits.append((names[joined[0]], cells[joined[0]]))
        if len(fits) == 1:
            column, cell = fits[0]
            return (f"row {line}, column {column!r}: {n} cells where the header has {m}; "
                    f"{show(cell)} has a decimal comma, which splits it in two in a "
                    f"comma-separated file; write {cell.replace(',', '.')} (or save the file "
                    "';'-separated)")
    word = SEPARATORS[sep]
    if not any(cell.strip() for cell in row[m:]):
        return (f"row {line}: {n} cells where the header (row 1) has {m}; the row ends with "
                f"{n - m} extra {word}{'s' if n - m > 1 else ''}: delete "
                f"{'them' if n - m > 1 else 'it'}, or name the extra column in the header")
    if sep == ",":
        return (f"row {line}: {n} cells where the header (row 1) has {m}; a comma inside a cell "
                "splits it in two: put a cell that holds a comma in double quotes "
                "(\"acme/model, v2\"), write numbers with a decimal point (0.62, not 0,62), or "
                "save the file ';'-separated")
    return (f"row {line}: {n} cells where the header (row 1) has {m}; a {word} inside a cell "
            f"splits it in two: put that cell in double quotes (\"acme/model{sep} v2\") or "
            f"remove the extra {word}")


def decimal_mark(df: pd.DataFrame, path: Path, wide: bool) -> str:
    """Find the file's decimal mark from its numeric cells, and turn decimal commas into points.

    A file whose numbers have no decimal comma is read as it always was. One with decimal commas
    and no decimal points is a spreadsheet export (0,62 is 0.62). A file with both is refused:
    within a column (0.62 and 0,62) it mixes marks; 1.234 among decimal commas (or 1,234 among
    decimal points) may be a thousands separator. Returns ',' or '.'.
    """
    cols = [c for c in df.columns if c in NUMERIC or (wide and c not in METADATA and c != "line")]
    cells = {c: df[c].str.strip() for c in cols}
    for group, pattern in _THOUSANDS.items():
        for c in cols:
            bad = cells[c].str.fullmatch(pattern, na=False)
            if bad.any():
                value = cells[c][bad].iloc[0]
                raise fail(path, f"{line_numbers(df.line[bad])}, column {c!r}: {show(value)} has a "
                                 f"thousands separator; write the number without it "
                                 f"({value.replace(group, '')})")
    point = {c: cells[c].str.fullmatch(_POINT, na=False) for c in cols}
    comma = {c: cells[c].str.fullmatch(_COMMA, na=False) for c in cols}
    n_point = sum(int(s.sum()) for s in point.values())
    n_comma = sum(int(s.sum()) for s in comma.values())
    if not n_comma:
        return "."
    if not n_point:
        grouped = {c: comma[c] & cells[c].str.fullmatch(_GROUPED, na=False) for c in cols}
        if all((grouped[c] == comma[c]).all() for c in cols):   # only 1,234-like cells
            c = next(c for c in cols if grouped[c].any())
            value = cells[c][grouped[c]].iloc[0]
            raise fail(path, f"{line_numbers(df.line[grouped[c]])}, column {c!r}: {show(value)} is "
                             f"ambiguous: {value.replace(',', '')} with a thousands separator, or "
                             f"{value.replace(',', '.')} with a decimal comma? write "
                             f"{value.replace(',', '')} or {value.replace(',', '.')}")
        for c in cols:
            df.loc[comma[c], c] = cells[c][comma[c]].str.replace(",", ".", regex=False)
        return ","
    mark, other = (",", ".") if n_comma > n_point else (".", ",")
    usual, odd = (comma, point) if mark == "," else (point, comma)
    c = next(c for c in cols if odd[c].any())
    value = cells[c][odd[c]].iloc[0]
    rows = line_numbers(df.line[odd[c]])
    if usual[c].any():
        same, where = c, ""
    else:
        same = next(k for k in cols if usual[k].any())
        where = f", column {same!r}"
    example = cells[same][usual[same]].iloc[0]
    seen = f"(e.g. {show(example)} in row {df.line[usual[same]].iloc[0]}{where})"
    if re.fullmatch(_GROUPED, value):
        as_thousands, as_decimal = value.replace(other, ""), value.replace(other, ".")
        raise fail(path, f"{rows}, column {c!r}: {show(value)} is ambiguous in a file with "
                         f"{_MARK_NAME[mark]}s {seen}: {as_thousands} with a thousands separator, "
                         f"or {as_decimal} with a {_MARK_NAME[other]}? write {as_thousands} or "
                         f"{value.replace(other, mark)}")
    context = "other rows of this column have" if not where else "the file has"
    raise fail(path, f"{rows}, column {c!r}: {show(value)} has a {_MARK_NAME[other]} but "
                     f"{context} {_MARK_NAME[mark]}s {seen}; use one decimal mark throughout: "
                     f"write {value.replace(other, mark)}")
