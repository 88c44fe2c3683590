"""The checks of a scores table's cells, each refusal naming file, rows and column.

Names (blank, too long), numbers (sizes in billions, tokens in trillions, scores as fractions,
with the usual unit slips converted and noted), dates, and the rows' agreement with each other.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_densing.data.columns import MODEL_LEVEL
from bayes_densing.data.messages import fail, line_numbers, show

RAW_COUNT = 1e5        # params above this many "billions" are raw counts
MAX_NAME = 200


def check_text(df: pd.DataFrame, path: Path) -> None:
    """Refuse blank or overlong model and benchmark names and unknown roles; lower-case
    benchmarks and roles."""
    for col in ("model", "benchmark"):
        blank = df[df[col] == ""]
        if len(blank):
            raise fail(path, f"{line_numbers(blank.line)}, column {col!r}: empty {col} name; fill it in")
        long = df[df[col].str.len() > MAX_NAME]
        if len(long):
            raise fail(path, f"{line_numbers(long.line)}, column {col!r}: name longer than {MAX_NAME} "
                             "characters; shorten it")
    df["benchmark"] = df["benchmark"].str.lower()
    if "role" in df.columns:
        df["role"] = df["role"].str.lower()
        bad = df[~df.role.isin(["reference", "target", ""])]
        if len(bad):
            raise fail(path, f"{line_numbers(bad.line)}, column 'role': {show(bad.role.iloc[0])} is not "
                             "'reference' or 'target'; write one of those (or leave it empty)")


def _to_float(df: pd.DataFrame, col: str, path: Path, *, required: bool) -> pd.Series:
    """Column ``col`` as floats (blank cells NaN, refused when ``required``); refuses non-numbers."""
    values = pd.to_numeric(df[col].replace("", np.nan), errors="coerce")
    bad = df[values.isna() & (df[col] != "")]
    if len(bad):
        raise fail(path, f"{line_numbers(bad.line)}, column {col!r}: {show(bad[col].iloc[0])} is not a "
                         "number; write a plain number such as 7.2 (no units, no formulas)")
    if required and values.isna().any():
        rows = df.line[values.isna()]
        raise fail(path, f"{line_numbers(rows)}, column {col!r}: missing value; fill it in")
    return values.astype(float)


def parse_numbers(df: pd.DataFrame, path: Path, notices: list[str]) -> None:
    """Turn the numeric columns into floats in place, converting unit slips with a notice."""
    _parse_params(df, path, notices)
    _parse_tokens(df, path, notices)
    _parse_scores(df, path, notices)
    _parse_task_columns(df, path)


def _parse_params(df: pd.DataFrame, path: Path, notices: list[str]) -> None:
    """Sizes in billions; raw counts (7e9) are divided down."""
    df["params"] = _to_float(df, "params", path, required=True)
    for col in ("params", "params_active"):
        if col not in df.columns:
            continue
        if col != "params":
            df[col] = _to_float(df, col, path, required=False)
        values = df[col]
        bad = df[(values <= 0) | ~np.isfinite(values.fillna(1.0))]
        if len(bad):
            raise fail(path, f"{line_numbers(bad.line)}, column {col!r}: {bad[col].iloc[0]} is not a "
                             "positive parameter count; give the size in billions (7 for a 7B model)")
        raw = values > RAW_COUNT
        if raw.any():
            df.loc[raw, col] = values[raw] / 1e9
            notices.append(f"{path.name}: column {col!r} had raw parameter counts (e.g. "
                           f"{values[raw].iloc[0]:.3g}) in {line_numbers(df.line[raw])}; read as "
                           f"{values[raw].iloc[0] / 1e9:.3g} billion")
    small = df.params < 0.01
    if small.any():
        notices.append(f"{path.name}: {line_numbers(df.line[small])} have params below 0.01 (10M); "
                       "params are in billions — check the unit")


def _parse_tokens(df: pd.DataFrame, path: Path, notices: list[str]) -> None:
    """Training tokens in trillions (optional); raw counts are divided down."""
    if "tokens" in df.columns:
        df["tokens"] = _to_float(df, "tokens", path, required=False)
        huge = (df.tokens > 100) & (df.tokens <= 1e6)
        if huge.any():
            notices.append(f"{path.name}: {line_numbers(df.line[huge])} have tokens above 100 trillion; "
                           "tokens are in trillions (627 billion is 0.627) — check the unit")
        bad = df[df.tokens <= 0]
        if len(bad):
            raise fail(path, f"{line_numbers(bad.line)}, column 'tokens': must be positive; give the "
                             "training tokens in trillions (2 for 2T), or leave it empty")
        raw = df.tokens > 1e6
        if raw.any():
            df.loc[raw, "tokens"] = df.tokens[raw] / 1e12
            notices.append(f"{path.name}: column 'tokens' had raw token counts in "
                           f"{line_numbers(df.line[raw])}; read as trillions")
    else:
        df["tokens"] = np.nan


def _parse_scores(df: pd.DataFrame, path: Path, notices: list[str]) -> None:
    """Scores as fractions in [0, 1]; a benchmark given in percentages is divided by 100."""
    df["score"] = _to_float(df, "score", path, required=False)
    blank = df.score.isna()
    scoreless = blank.groupby(df.model).transform("all")
    if scoreless.any():
        rows = df[scoreless]
        raise fail(path, f"{line_numbers(rows.line)}, column 'score': model {show(rows.model.iloc[0])} "
                         "has no scores; fill in its scores or delete its rows")
    if blank.any():
        notices.append(f"{path.name}: {line_numbers(df.line[blank])} have no score and were skipped")
    for bench, rows in df[~blank].groupby("benchmark"):
        s = rows.score
        if (s < 0).any():
            bad = rows[s < 0]
            raise fail(path, f"{line_numbers(bad.line)}, column 'score': {bad.score.iloc[0]} is "
                             "negative; scores are fractions in [0, 1]")
        if s.max() > 1:
            if s.max() <= 100 and s.median() <= 1:  # mostly fractions, some percentages
                bad = rows[s > 1]
                raise fail(path, f"{line_numbers(bad.line)}, column 'score': benchmark {show(bench)} mixes "
                                 f"fractions and percentages (e.g. {s[s < 1].iloc[0]:g} and "
                                 f"{bad.score.iloc[0]:g}); use one unit per benchmark")
            if s.max() <= 100:
                df.loc[rows.index, "score"] = s / 100.0
                notices.append(f"{path.name}: scores of {show(bench)} are percentages (max "
                               f"{s.max():g}); divided by 100")
            else:
                bad = rows[s > 100]
                raise fail(path, f"{line_numbers(bad.line)}, column 'score': {bad.score.iloc[0]} is "
                                 "above 1 (and above 100); scores are fractions in [0, 1]")


def _parse_task_columns(df: pd.DataFrame, path: Path) -> None:
    """The optional per-benchmark facts: item count, chance level, loss."""
    for col in ("n_items", "chance", "loss"):
        if col in df.columns:
            df[col] = _to_float(df, col, path, required=False)
    if "n_items" in df.columns:
        bad = df[df.n_items.notna() & ((df.n_items < 1) | (df.n_items != df.n_items.round()))]
        if len(bad):
            raise fail(path, f"{line_numbers(bad.line)}, column 'n_items': must be a whole number ≥ 1 "
                             "(the benchmark's number of questions)")
    if "chance" in df.columns:
        bad = df[(df.chance < 0) | (df.chance >= 1)]
        if len(bad):
            raise fail(path, f"{line_numbers(bad.line)}, column 'chance': must be in [0, 1); give the "
                             "random-guess score as a fraction (0.25 for 4-way multiple choice)")


def parse_dates(df: pd.DataFrame, path: Path) -> None:
    """Release dates as timestamps, year first; refuses other dates and dates in the future."""
    text = df.release_date
    parsed = pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns]")
    # year first only: 2023/03/01 is unambiguous, 03/01/2023 is not (March or January?)
    for fmt in ("%Y-%m-%d", "%Y/%m/%d", "%Y-%m", "%Y/%m"):
        parsed = parsed.fillna(pd.to_datetime(text, format=fmt, errors="coerce"))
    bad = df[parsed.isna()]
    if len(bad):
        raise fail(path, f"{line_numbers(bad.line)}, column 'release_date': {show(bad.release_date.iloc[0])} "
                         "is not a date; write YYYY-MM-DD (or YYYY/MM/DD, YYYY-MM)")
    future = df[parsed > pd.Timestamp(date.today())]
    if len(future):
        raise fail(path, f"{line_numbers(future.line)}, column 'release_date': "
                         f"{future.release_date.iloc[0]} is in the future; check the year")
    df["release_date"] = parsed


def check_consistency(df: pd.DataFrame, path: Path, notices: list[str]) -> pd.DataFrame:
    """``df`` without rows lacking a score or exactly repeated; refuses conflicting rows."""
    df = df[df.score.notna()]
    dup = df[df.duplicated(["model", "benchmark"], keep=False)]
    if len(dup):
        differing = dup.groupby(["model", "benchmark"]).score.nunique()
        differing = differing[differing > 1]
        if len(differing):
            m, b = differing.index[0]
            rows = dup[(dup.model == m) & (dup.benchmark == b)].line
            raise fail(path, f"{line_numbers(rows)}, column 'score': {show(m)} has {differing.iloc[0]} "
                             f"different scores on {show(b)}; keep one row per model and benchmark")
        notices.append(f"{path.name}: dropped exact duplicate rows {line_numbers(dup.line[dup.duplicated(['model', 'benchmark'])])}")
        df = df.drop_duplicates(["model", "benchmark"])
    for col in MODEL_LEVEL:
        if col not in df.columns:
            continue
        n = df.groupby("model")[col].nunique(dropna=False)
        if (n > 1).any():
            m = n[n > 1].index[0]
            rows = df.line[df.model == m]
            raise fail(path, f"{line_numbers(rows)}, column {col!r}: model {show(m)} has "
                             f"{n[m]} different values; a model's {col} must be the same on every row")
    return df
