"""Read a scores CSV (long or wide; see docs/data-format.md) into a checked long table.

* long — one row per (model, benchmark): ``model, params, release_date, benchmark, score``
  plus optional ``tokens, family, role, n_items, chance, loss, params_active``;
* wide — one row per model, one column per benchmark score.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_densing.data import registry as benchmark_registry
from bayes_densing.data.checks import (check_consistency, check_text, parse_dates,
                                       parse_numbers)
from bayes_densing.data.columns import METADATA, REQUIRED, column_name
from bayes_densing.data.dialect import SEPARATORS, check_field_counts, decimal_mark, separator
from bayes_densing.data.messages import fail, line_numbers, show
from bayes_densing.data.tasks import name_tasks

FORMULA_START = r"[=+\-@\t\r]"   # cells a spreadsheet would evaluate (CSV injection)


def read_scores(path: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """Read a scores CSV into a validated long table (one row per model × benchmark).

    Returns the table (with a ``line`` column: the row's line number in the file) and the
    notices about conversions made on the way (percentages, raw parameter counts).
    """
    path = Path(path)
    text = _decode(path)
    sep = separator(text)
    check_field_counts(text, sep, path)
    df = _table(text, sep, path)
    notices: list[str] = []
    wide = "benchmark" not in df.columns and "score" not in df.columns
    mark = decimal_mark(df, path, wide)
    if sep != "," or mark == ",":
        notices.append(f"{path.name}: read as {SEPARATORS[sep]}-separated"
                       + (" with decimal commas (a spreadsheet export)" if mark == "," else ""))
    df = _long(df, path, wide)
    check_text(df, path)
    name_tasks(df)
    formula = df[df.model.str.match(FORMULA_START)]
    if len(formula):
        notices.append(f"{path.name}: {line_numbers(formula.line)}, column 'model': names such as "
                       f"{show(formula.model.iloc[0])} begin like a spreadsheet formula; they are "
                       "kept as plain text, but a spreadsheet may run them when it opens models.csv")
    parse_numbers(df, path, notices)
    parse_dates(df, path)
    df = check_consistency(df, path, notices)
    return df.reset_index(drop=True), notices


def _decode(path: Path) -> str:
    """The file's text; refuses what is not a readable UTF-8 text file."""
    if not path.exists():
        raise fail(path, "file not found; give the path to a scores CSV (see docs/data-format.md)")
    if path.is_dir():
        raise fail(path, "is a directory, not a CSV file; give the path of the scores CSV")
    raw = path.read_bytes()
    if not raw.strip():
        raise fail(path, "the file is empty; it needs a header row and one row per model × benchmark")
    if b"\x00" in raw:
        raise fail(path, "a binary file (it holds NUL bytes), not a text CSV; export the scores "
                         "as CSV (see docs/data-format.md)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise fail(path, f"row {line}: bytes that are not UTF-8 (byte {exc.start}); "
                         "save the file as UTF-8") from None
    return text


def _table(text: str, sep: str, path: Path) -> pd.DataFrame:
    """The file as a table of strings, columns named, with a ``line`` column; refuses a header
    that is not a scores file's, and a file without at least two data rows."""
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False,
                         skipinitialspace=True)
    except (pd.errors.ParserError, csv.Error) as exc:
        raise fail(path, f"not a valid CSV ({str(exc).strip()}); check that row's quotes and "
                         "separators") from None
    # pandas renames a repeated column ("family.1"), so look at the header as written
    header = [column_name(c) for c in next(csv.reader(io.StringIO(text), delimiter=sep), [])]
    repeated = sorted({c for c in header if c and header.count(c) > 1})
    if repeated:
        raise fail(path, f"row 1 (header), column {show(repeated[0])}: appears twice; rename or "
                         "delete one")
    df.columns = [column_name(c) for c in df.columns]
    if len(df.columns) < 3:
        found = ", ".join(show(c, 30) for c in df.columns[:5])
        raise fail(path, f"row 1 (header): not a scores CSV, found the column{'s' if len(df.columns) > 1 else ''} "
                         f"{found}; need at least {', '.join(REQUIRED)} and benchmark scores, "
                         "comma-separated (or ';'- or tab-separated; see docs/data-format.md)")
    df["line"] = np.arange(len(df)) + 2
    if df.empty:
        raise fail(path, "row 1 (header): a header but no data rows; add one row per model × "
                         "benchmark (see docs/data-format.md)")
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise fail(path, f"row 1 (header): missing required column{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(missing)} (found: {', '.join(c for c in df.columns if c != 'line')}); "
                         "add it, or rename the column that holds it")
    if len(df) == 1:
        raise fail(path, "row 2: the file has a single data row; the model needs reference models "
                         "of at least 2 sizes and target models from at least 2 dates, each with "
                         "scores (see docs/data-format.md)")
    return df


def _long(df: pd.DataFrame, path: Path, wide: bool) -> pd.DataFrame:
    """One row per model × benchmark, cells stripped: a wide file melted, a long one checked."""
    if not wide:
        for col in ("benchmark", "score"):
            if col not in df.columns:
                raise fail(path, f"row 1 (header): missing column {col!r}: a long-format file needs both "
                                 "'benchmark' and 'score' (or use wide format, one column per benchmark)")
    else:
        df = _melt_wide(df, path)
    for col in df.columns:
        if df[col].dtype == object:
            df[col] = df[col].str.strip()
    return df


def _melt_wide(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """A wide file as a long one; a benchmark's column is one the registry knows or one holding
    a number."""
    bench_cols = [c for c in df.columns if c not in METADATA and c != "line"
                  and (benchmark_registry.lookup(c) is not None
                       or pd.to_numeric(df[c].replace("", np.nan), errors="coerce").notna().any())]
    if not bench_cols:
        raise fail(path, "no benchmark columns: give a long file (benchmark, score columns) or a "
                         "wide file with one score column per benchmark")
    empty = df[(df[bench_cols].apply(lambda c: c.str.strip()) == "").all(axis=1)]
    if len(empty):
        raise fail(path, f"{line_numbers(empty.line)}, columns {', '.join(bench_cols)}: model "
                         f"{show(empty.model.iloc[0])} has no scores; fill in its scores or "
                         "delete the row")
    keep = [c for c in df.columns if c not in bench_cols]
    long = df.melt(id_vars=keep, value_vars=bench_cols, var_name="benchmark", value_name="score")
    return long[long.score != ""].copy()
