"""Read, validate and assemble benchmark scores into the container the model consumes.

Two layouts are accepted (see docs/data-format.md):

* long — one row per (model, benchmark): ``model, params, release_date, benchmark, score``
  plus optional ``tokens, family, role, n_items, chance, loss, params_active``;
* wide — one row per model, one column per benchmark score.

Every problem is reported as a :class:`DataError` whose one-line message names the file, the
row(s) (as line numbers in the file, header = line 1) and the column, and says how to fix it.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import itertools
import re
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_densing.data import registry as benchmark_registry
from bayes_densing.config import Config

REQUIRED = ("model", "params", "release_date")
ALIASES = {"params_b": "params", "tokens_t": "tokens", "date": "release_date",
           "params_active_b": "params_active", "name": "model"}
METADATA = ("model", "family", "params", "params_active", "tokens", "release_date",
            "date_precision", "role", "suite", "is_base", "specialist", "in_densing_paper",
            "note", "n_items", "chance", "loss", "benchmark", "score", "source", "tokens_upper",
            "date_source", "continued_pretraining", "provenance", "shots")
MODEL_LEVEL = ("family", "params", "params_active", "tokens", "release_date", "role")
RAW_COUNT = 1e5        # params above this many "billions" are raw counts
MAX_NAME = 200
FORMULA_START = r"[=+\-@\t\r]"   # cells a spreadsheet would evaluate (CSV injection)
SEPARATORS = {",": "comma", ";": "';'", "\t": "tab"}    # the separators read, by name
NUMERIC = ("params", "params_active", "tokens", "score", "n_items", "chance", "loss")


MIN_SHARED_MODELS, MIN_SHARED_SPAN = 5, 10.0   # what anchors a task without reference scores


class DataError(ValueError):
    """Input data that cannot be used; the message names file, rows and column."""


@dataclass(frozen=True)
class BundledDataset:
    name: str
    filename: str
    description: str
    source: str
    reference: str                      # default reference family
    benchmarks: tuple[str, ...]         # default benchmark set
    since: str                          # default start of the target window


DATASETS: dict[str, BundledDataset] = {d.name: d for d in [
    BundledDataset(
        name="open-base-llms",
        filename="open_base_llms.csv",
        description="148 open base LLMs (2019–2024), Open LLM Leaderboard v1/v2 + HumanEval",
        source="ObsScaling (Ruan et al. 2024, Apache-2.0); dates from model cards; Epoch AI (MIT)",
        reference="Qwen1.5",
        # the benchmark rule's set (analyses/benchmark_rule.py; docs/analyses.md): TruthfulQA and
        # GSM8K, in the earlier default (CHANGELOG), fail it; GPQA is borderline and stays out
        benchmarks=("arc_challenge", "bbh", "hellaswag", "humaneval", "math_hard", "mmlu",
                    "mmlu_pro", "winogrande", "xwinograd"),
        since="2023-01-01",
    ),
    BundledDataset(
        name="swallow-2025",
        filename="swallow_2025.csv",
        description="75 open base LLMs (2023-12 … 2025-11), one independent harness (Swallow "
                    "LLM Leaderboard); reference family: the seven Qwen2.5 base models",
        source="Swallow LLM Leaderboard (swallow-llm/leaderboard, CC BY 4.0); sizes, tokens and "
               "dates from model cards (datasets/README-swallow_2025.md)",
        reference="Qwen2.5",
        # the benchmark rule's set (analyses/benchmark_rule.py; docs/analyses.md) less SQuAD 2.0,
        # whose two smallest references score at its floor (0.501, 0.506 against chance 0.50):
        # with it the curve fit diverged (5 of 4,000 transitions at seed 0), without it none
        benchmarks=("bbh@swallow-v2", "hellaswag@swallow", "mmlu@swallow", "triviaqa@swallow",
                    "xwinograd@swallow"),
        since="2023-01-01",
    ),
]}


def dataset_path(name: str) -> Path:
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; bundled datasets: {', '.join(DATASETS)}")
    return Path(str(resources.files("bayes_densing") / "datasets" / DATASETS[name].filename))


@dataclass
class ScoreData:
    """Everything the model needs, with reference models first, then targets by date."""

    models: pd.DataFrame          # model, family, params, params_total, params_active, tokens,
                                  # release_date, t (months from date_origin), role
    benchmarks: list[str]
    chance: np.ndarray            # per benchmark
    n_items: np.ndarray           # per benchmark
    obs: pd.DataFrame             # model_idx, bench_idx, score, k, n, loss
    source: str
    sha256: str
    date_origin: str
    since: str = ""
    reference: str = ""           # the reference family chosen by name ("" when from a role column)
    # tasks without reference scores: their scores, anchored after the fit (sequential.py)
    unanchored: pd.DataFrame = field(default_factory=pd.DataFrame)
    notices: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def n_ref(self) -> int:
        return int((self.models.role == "reference").sum())

    @property
    def n_target(self) -> int:
        return len(self.models) - self.n_ref

    @property
    def targets(self) -> pd.DataFrame:
        return self.models.iloc[self.n_ref:]

    @property
    def references(self) -> pd.DataFrame:
        return self.models.iloc[: self.n_ref]

    @property
    def has_loss(self) -> bool:
        return bool(self.obs["loss"].notna().any())

    def describe(self) -> str:
        t = self.targets.release_date
        return (f"{self.n_target} target models ({t.min():%Y-%m-%d} … {t.max():%Y-%m-%d}), "
                f"{self.n_ref} reference models ({', '.join(sorted(set(self.references.family)))}), "
                f"{len(self.benchmarks)} benchmarks ({', '.join(self.benchmarks)}), "
                f"{len(self.obs)} scores"
                + (f"; {self.unanchored.benchmark.nunique()} task(s) without reference scores "
                   f"({', '.join(sorted(self.unanchored.benchmark.unique()))}), "
                   f"{len(self.unanchored)} scores" if not self.unanchored.empty else ""))


# --- reading -----------------------------------------------------------------------------------

def _fail(path, message: str) -> DataError:
    return DataError(f"{path}: {message}")


def _show(value, width: int = 40) -> str:
    """A cell's value for a message: quoted, and cut short (a name may be 10,000 characters)."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 5] + "…" + text[-4:]


def _lines(rows) -> str:
    rows = sorted({int(r) for r in rows})
    shown = ", ".join(str(r) for r in rows[:8])
    return f"row{'s' if len(rows) > 1 else ''} {shown}{' …' if len(rows) > 8 else ''}"


def read_scores(path: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """Read a scores CSV into a validated long table (one row per model × benchmark).

    Returns the table (with a ``line`` column: the row's line number in the file) and the
    notices about conversions made on the way (percentages, raw parameter counts).
    """
    path = Path(path)
    if not path.exists():
        raise _fail(path, "file not found; give the path to a scores CSV (see docs/data-format.md)")
    if path.is_dir():
        raise _fail(path, "is a directory, not a CSV file; give the path of the scores CSV")
    raw = path.read_bytes()
    if not raw.strip():
        raise _fail(path, "the file is empty; it needs a header row and one row per model × benchmark")
    if b"\x00" in raw:
        raise _fail(path, "a binary file (it holds NUL bytes), not a text CSV; export the scores "
                          "as CSV (see docs/data-format.md)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise _fail(path, f"row {line}: bytes that are not UTF-8 (byte {exc.start}); "
                          "save the file as UTF-8") from None
    sep = _separator(text)
    _check_field_counts(text, sep, path)
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False,
                         skipinitialspace=True)
    except (pd.errors.ParserError, csv.Error) as exc:
        raise _fail(path, f"not a valid CSV ({str(exc).strip()}); check that row's quotes and "
                          "separators") from None
    # pandas renames a repeated column ("family.1"), so look at the header as written
    header = [_column_name(c) for c in next(csv.reader(io.StringIO(text), delimiter=sep), [])]
    repeated = sorted({c for c in header if c and header.count(c) > 1})
    if repeated:
        raise _fail(path, f"row 1 (header), column {_show(repeated[0])}: appears twice; rename or "
                          "delete one")
    df.columns = [_column_name(c) for c in df.columns]
    if len(df.columns) < 3:
        found = ", ".join(_show(c, 30) for c in df.columns[:5])
        raise _fail(path, f"row 1 (header): not a scores CSV, found the column{'s' if len(df.columns) > 1 else ''} "
                          f"{found}; need at least {', '.join(REQUIRED)} and benchmark scores, "
                          "comma-separated (or ';'- or tab-separated; see docs/data-format.md)")
    df["line"] = np.arange(len(df)) + 2
    if df.empty:
        raise _fail(path, "row 1 (header): a header but no data rows; add one row per model × "
                          "benchmark (see docs/data-format.md)")
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise _fail(path, f"row 1 (header): missing required column{'s' if len(missing) > 1 else ''} "
                          f"{', '.join(missing)} (found: {', '.join(c for c in df.columns if c != 'line')}); "
                          "add it, or rename the column that holds it")
    if len(df) == 1:
        raise _fail(path, "row 2: the file has a single data row; the model needs reference models "
                          "of at least 2 sizes and target models from at least 2 dates, each with "
                          "scores (see docs/data-format.md)")
    notices: list[str] = []
    wide = "benchmark" not in df.columns and "score" not in df.columns
    mark = _decimal_mark(df, path, wide)
    if sep != "," or mark == ",":
        notices.append(f"{path.name}: read as {SEPARATORS[sep]}-separated"
                       + (" with decimal commas (a spreadsheet export)" if mark == "," else ""))
    if not wide:
        for col in ("benchmark", "score"):
            if col not in df.columns:
                raise _fail(path, f"row 1 (header): missing column {col!r}: a long-format file needs both "
                                  "'benchmark' and 'score' (or use wide format, one column per benchmark)")
    else:
        df = _melt_wide(df, path)
    for col in df.columns:
        if df[col].dtype == object:
            df[col] = df[col].str.strip()
    _check_text(df, path)
    _name_tasks(df)
    formula = df[df.model.str.match(FORMULA_START)]
    if len(formula):
        notices.append(f"{path.name}: {_lines(formula.line)}, column 'model': names such as "
                       f"{_show(formula.model.iloc[0])} begin like a spreadsheet formula; they are "
                       "kept as plain text, but a spreadsheet may run them when it opens models.csv")
    _parse_numbers(df, path, notices)
    _parse_dates(df, path)
    df = _check_consistency(df, path, notices)
    return df.reset_index(drop=True), notices


# --- the file's dialect: separator and decimal mark ----------------------------------------------

_INTEGER = r"[+-]?\d+(?:[eE][+-]?\d+)?"
_POINT = r"[+-]?(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?"             # 0.62, 1.5e9
_COMMA = r"[+-]?(?:\d+,\d*|,\d+)(?:[eE][+-]?\d+)?"               # 0,62, 1,5E+09
_GROUPED = r"[+-]?[1-9]\d{0,2}[.,]\d{3}"                          # 1.234 / 1,234: which separator?
_THOUSANDS = {",": r"[+-]?\d{1,3}(?:,\d{3})+\.\d*|[+-]?\d{1,3}(?:,\d{3}){2,}",    # 1,234.5
              ".": r"[+-]?\d{1,3}(?:\.\d{3})+,\d*|[+-]?\d{1,3}(?:\.\d{3}){2,}"}   # 1.234,5
_MARK_NAME = {".": "decimal point", ",": "decimal comma"}


def _column_name(column: str) -> str:
    name = column.strip().lower()
    return ALIASES.get(name, name)


def _known_column(column: str) -> bool:
    name = _column_name(column)
    return name in METADATA or benchmark_registry.lookup(name) is not None


def _separator(text: str) -> str:
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
        known[sep] = sum(_known_column(c) for c in header)
    best = max(known, key=known.get)              # the first of equals: ',' before ';' before tab
    if known[best]:
        return best
    sample = "\n".join(text.splitlines()[:20])
    try:
        return csv.Sniffer().sniff(sample, delimiters="".join(SEPARATORS)).delimiter
    except csv.Error:
        return ","


def _check_field_counts(text: str, sep: str, path: Path) -> None:
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
                    raise _fail(path, _extra_cells(row, header, sep, start))
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
    names = [_column_name(c) for c in header]
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
                    f"{_show(cell)} has a decimal comma, which splits it in two in a "
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


def _decimal_mark(df: pd.DataFrame, path: Path, wide: bool) -> str:
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
                raise _fail(path, f"{_lines(df.line[bad])}, column {c!r}: {_show(value)} has a "
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
            raise _fail(path, f"{_lines(df.line[grouped[c]])}, column {c!r}: {_show(value)} is "
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
    rows = _lines(df.line[odd[c]])
    if usual[c].any():
        same, where = c, ""
    else:
        same = next(k for k in cols if usual[k].any())
        where = f", column {same!r}"
    example = cells[same][usual[same]].iloc[0]
    seen = f"(e.g. {_show(example)} in row {df.line[usual[same]].iloc[0]}{where})"
    if re.fullmatch(_GROUPED, value):
        as_thousands, as_decimal = value.replace(other, ""), value.replace(other, ".")
        raise _fail(path, f"{rows}, column {c!r}: {_show(value)} is ambiguous in a file with "
                          f"{_MARK_NAME[mark]}s {seen}: {as_thousands} with a thousands separator, "
                          f"or {as_decimal} with a {_MARK_NAME[other]}? write {as_thousands} or "
                          f"{value.replace(other, mark)}")
    context = "other rows of this column have" if not where else "the file has"
    raise _fail(path, f"{rows}, column {c!r}: {_show(value)} has a {_MARK_NAME[other]} but "
                      f"{context} {_MARK_NAME[mark]}s {seen}; use one decimal mark throughout: "
                      f"write {value.replace(other, mark)}")


def _melt_wide(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    bench_cols = [c for c in df.columns if c not in METADATA and c != "line"
                  and (benchmark_registry.lookup(c) is not None
                       or pd.to_numeric(df[c].replace("", np.nan), errors="coerce").notna().any())]
    if not bench_cols:
        raise _fail(path, "no benchmark columns: give a long file (benchmark, score columns) or a "
                          "wide file with one score column per benchmark")
    empty = df[(df[bench_cols].apply(lambda c: c.str.strip()) == "").all(axis=1)]
    if len(empty):
        raise _fail(path, f"{_lines(empty.line)}, columns {', '.join(bench_cols)}: model "
                          f"{_show(empty.model.iloc[0])} has no scores; fill in its scores or "
                          "delete the row")
    keep = [c for c in df.columns if c not in bench_cols]
    long = df.melt(id_vars=keep, value_vars=bench_cols, var_name="benchmark", value_name="score")
    return long[long.score != ""].copy()


def _check_text(df: pd.DataFrame, path: Path) -> None:
    for col in ("model", "benchmark"):
        blank = df[df[col] == ""]
        if len(blank):
            raise _fail(path, f"{_lines(blank.line)}, column {col!r}: empty {col} name; fill it in")
        long = df[df[col].str.len() > MAX_NAME]
        if len(long):
            raise _fail(path, f"{_lines(long.line)}, column {col!r}: name longer than {MAX_NAME} "
                              "characters; shorten it")
    df["benchmark"] = df["benchmark"].str.lower()
    if "role" in df.columns:
        df["role"] = df["role"].str.lower()
        bad = df[~df.role.isin(["reference", "target", ""])]
        if len(bad):
            raise _fail(path, f"{_lines(bad.line)}, column 'role': {_show(bad.role.iloc[0])} is not "
                              "'reference' or 'target'; write one of those (or leave it empty)")


def _name_tasks(df: pd.DataFrame) -> None:
    """A benchmark from a named source is its own task, ``benchmark@source``: two harnesses (or
    two versions of one) score the same benchmark differently, so their scores never share a
    curve. A blank source leaves the benchmark's name as it is."""
    if "source" not in df.columns:
        return
    source = df["source"].str.strip().str.lower()
    named = source != ""
    df.loc[named, "benchmark"] = df.benchmark[named] + benchmark_registry.TASK_SEP + source[named]


def select_tasks(wanted, present, source) -> list[str]:
    """The tasks ``wanted`` names, in its order: a task by its full name, or a benchmark by its
    base name (every source's task of it). Unknown names are an error naming what exists."""
    def matches(name):
        return [name] if name in present else [
            t for t in present if benchmark_registry.base_benchmark(t) == name]

    wanted = [w.strip().lower() for w in wanted]
    unknown = [w for w in wanted if not matches(w)]
    if unknown:
        raise _fail(source, f"column 'benchmark': {', '.join(unknown)} not in the data; "
                            f"available: {', '.join(present)}")
    return list(dict.fromkeys(t for w in wanted for t in matches(w)))


def _to_float(df: pd.DataFrame, col: str, path: Path, *, required: bool) -> pd.Series:
    values = pd.to_numeric(df[col].replace("", np.nan), errors="coerce")
    bad = df[values.isna() & (df[col] != "")]
    if len(bad):
        raise _fail(path, f"{_lines(bad.line)}, column {col!r}: {_show(bad[col].iloc[0])} is not a "
                          "number; write a plain number such as 7.2 (no units, no formulas)")
    if required and values.isna().any():
        rows = df.line[values.isna()]
        raise _fail(path, f"{_lines(rows)}, column {col!r}: missing value; fill it in")
    return values.astype(float)


def _parse_numbers(df: pd.DataFrame, path: Path, notices: list[str]) -> None:
    df["params"] = _to_float(df, "params", path, required=True)
    for col in ("params", "params_active"):
        if col not in df.columns:
            continue
        if col != "params":
            df[col] = _to_float(df, col, path, required=False)
        values = df[col]
        bad = df[(values <= 0) | ~np.isfinite(values.fillna(1.0))]
        if len(bad):
            raise _fail(path, f"{_lines(bad.line)}, column {col!r}: {bad[col].iloc[0]} is not a "
                              "positive parameter count; give the size in billions (7 for a 7B model)")
        raw = values > RAW_COUNT
        if raw.any():
            df.loc[raw, col] = values[raw] / 1e9
            notices.append(f"{path.name}: column {col!r} had raw parameter counts (e.g. "
                           f"{values[raw].iloc[0]:.3g}) in {_lines(df.line[raw])}; read as "
                           f"{values[raw].iloc[0] / 1e9:.3g} billion")
    small = df.params < 0.01
    if small.any():
        notices.append(f"{path.name}: {_lines(df.line[small])} have params below 0.01 (10M); "
                       "params are in billions — check the unit")
    if "tokens" in df.columns:
        df["tokens"] = _to_float(df, "tokens", path, required=False)
        huge = (df.tokens > 100) & (df.tokens <= 1e6)
        if huge.any():
            notices.append(f"{path.name}: {_lines(df.line[huge])} have tokens above 100 trillion; "
                           "tokens are in trillions (627 billion is 0.627) — check the unit")
        bad = df[df.tokens <= 0]
        if len(bad):
            raise _fail(path, f"{_lines(bad.line)}, column 'tokens': must be positive; give the "
                              "training tokens in trillions (2 for 2T), or leave it empty")
        raw = df.tokens > 1e6
        if raw.any():
            df.loc[raw, "tokens"] = df.tokens[raw] / 1e12
            notices.append(f"{path.name}: column 'tokens' had raw token counts in "
                           f"{_lines(df.line[raw])}; read as trillions")
    else:
        df["tokens"] = np.nan
    df["score"] = _to_float(df, "score", path, required=False)
    blank = df.score.isna()
    scoreless = blank.groupby(df.model).transform("all")
    if scoreless.any():
        rows = df[scoreless]
        raise _fail(path, f"{_lines(rows.line)}, column 'score': model {_show(rows.model.iloc[0])} "
                          "has no scores; fill in its scores or delete its rows")
    if blank.any():
        notices.append(f"{path.name}: {_lines(df.line[blank])} have no score and were skipped")
    for bench, rows in df[~blank].groupby("benchmark"):
        s = rows.score
        if (s < 0).any():
            bad = rows[s < 0]
            raise _fail(path, f"{_lines(bad.line)}, column 'score': {bad.score.iloc[0]} is "
                              "negative; scores are fractions in [0, 1]")
        if s.max() > 1:
            if s.max() <= 100 and s.median() <= 1:  # mostly fractions, some percentages
                bad = rows[s > 1]
                raise _fail(path, f"{_lines(bad.line)}, column 'score': benchmark {_show(bench)} mixes "
                                  f"fractions and percentages (e.g. {s[s < 1].iloc[0]:g} and "
                                  f"{bad.score.iloc[0]:g}); use one unit per benchmark")
            if s.max() <= 100:
                df.loc[rows.index, "score"] = s / 100.0
                notices.append(f"{path.name}: scores of {_show(bench)} are percentages (max "
                               f"{s.max():g}); divided by 100")
            else:
                bad = rows[s > 100]
                raise _fail(path, f"{_lines(bad.line)}, column 'score': {bad.score.iloc[0]} is "
                                  "above 1 (and above 100); scores are fractions in [0, 1]")
    for col in ("n_items", "chance", "loss"):
        if col in df.columns:
            df[col] = _to_float(df, col, path, required=False)
    if "n_items" in df.columns:
        bad = df[df.n_items.notna() & ((df.n_items < 1) | (df.n_items != df.n_items.round()))]
        if len(bad):
            raise _fail(path, f"{_lines(bad.line)}, column 'n_items': must be a whole number ≥ 1 "
                              "(the benchmark's number of questions)")
    if "chance" in df.columns:
        bad = df[(df.chance < 0) | (df.chance >= 1)]
        if len(bad):
            raise _fail(path, f"{_lines(bad.line)}, column 'chance': must be in [0, 1); give the "
                              "random-guess score as a fraction (0.25 for 4-way multiple choice)")


def _parse_dates(df: pd.DataFrame, path: Path) -> None:
    text = df.release_date
    parsed = pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns]")
    # year first only: 2023/03/01 is unambiguous, 03/01/2023 is not (March or January?)
    for fmt in ("%Y-%m-%d", "%Y/%m/%d", "%Y-%m", "%Y/%m"):
        parsed = parsed.fillna(pd.to_datetime(text, format=fmt, errors="coerce"))
    bad = df[parsed.isna()]
    if len(bad):
        raise _fail(path, f"{_lines(bad.line)}, column 'release_date': {_show(bad.release_date.iloc[0])} "
                          "is not a date; write YYYY-MM-DD (or YYYY/MM/DD, YYYY-MM)")
    future = df[parsed > pd.Timestamp(date.today())]
    if len(future):
        raise _fail(path, f"{_lines(future.line)}, column 'release_date': "
                          f"{future.release_date.iloc[0]} is in the future; check the year")
    df["release_date"] = parsed


def _check_consistency(df: pd.DataFrame, path: Path, notices: list[str]) -> pd.DataFrame:
    """``df`` without rows lacking a score or exactly repeated; refuses conflicting rows."""
    df = df[df.score.notna()]
    dup = df[df.duplicated(["model", "benchmark"], keep=False)]
    if len(dup):
        differing = dup.groupby(["model", "benchmark"]).score.nunique()
        differing = differing[differing > 1]
        if len(differing):
            m, b = differing.index[0]
            rows = dup[(dup.model == m) & (dup.benchmark == b)].line
            raise _fail(path, f"{_lines(rows)}, column 'score': {_show(m)} has {differing.iloc[0]} "
                              f"different scores on {_show(b)}; keep one row per model and benchmark")
        notices.append(f"{path.name}: dropped exact duplicate rows {_lines(dup.line[dup.duplicated(['model', 'benchmark'])])}")
        df = df.drop_duplicates(["model", "benchmark"])
    for col in MODEL_LEVEL:
        if col not in df.columns:
            continue
        n = df.groupby("model")[col].nunique(dropna=False)
        if (n > 1).any():
            m = n[n > 1].index[0]
            rows = df.line[df.model == m]
            raise _fail(path, f"{_lines(rows)}, column {col!r}: model {_show(m)} has "
                              f"{n[m]} different values; a model's {col} must be the same on every row")
    return df


# --- assembling --------------------------------------------------------------------------------

def _flag(df: pd.DataFrame, col: str) -> pd.Series:
    return df[col].astype(str).str.lower().isin(["true", "1", "yes"])


def load(config: Config, data_path: str | Path | None = None) -> ScoreData:
    """Read the user's file (or the bundled dataset) and assemble it under ``config``."""
    cfg = config.data
    bundled = DATASETS.get(cfg.dataset)
    if data_path is None:
        if bundled is None:
            raise DataError(f"unknown dataset {cfg.dataset!r}; bundled datasets: {', '.join(DATASETS)}")
        path = dataset_path(cfg.dataset)
        benchmarks = cfg.benchmarks or list(bundled.benchmarks)
        since = cfg.since or bundled.since
        reference = cfg.reference or bundled.reference
    else:
        path = Path(data_path)
        benchmarks, since, reference = cfg.benchmarks, cfg.since, cfg.reference
    df, notices = read_scores(path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    label = path.name if data_path is None else str(path)
    has_reference = reference or ("role" in df.columns and (df.role == "reference").any())
    if not has_reference and data_path is not None:
        df = _add_bundled_reference(df, path, benchmarks, config, notices)
    return assemble(df, config, source=label, sha256=sha, benchmarks=benchmarks, since=since,
                    reference=reference, notices=notices)


def bundled_reference(config: Config) -> pd.DataFrame:
    """The scores of the bundled dataset's default reference family (``data.dataset``): the
    reference a file of targets only borrows."""
    bundled = DATASETS[config.data.dataset]
    ref, _ = read_scores(dataset_path(bundled.name))
    return ref[ref.family == bundled.reference]


def _add_bundled_reference(df, path, benchmarks, config, notices):
    """A file of targets only: borrow the bundled dataset's default reference family."""
    bundled = DATASETS[config.data.dataset]
    ref = bundled_reference(config)
    shared = sorted(set(df.benchmark) & set(ref.benchmark))
    if benchmarks:
        shared = [b for b in shared if b in benchmarks]
    if not shared:
        raise _fail(path, f"column 'benchmark': no reference models given (no 'role' column, no "
                          f"--reference) and none of the file's benchmarks "
                          f"({', '.join(sorted(set(df.benchmark)))}) is among those of the bundled "
                          f"reference family {bundled.reference} ({', '.join(sorted(set(ref.benchmark)))}); "
                          "add reference models with a role column, or score your models on one of those")
    clash = set(df.model) & set(ref.model)
    if clash:
        notices.append(f"{path.name}: {', '.join(sorted(clash))} are in the bundled reference family; "
                       "their rows in the file were dropped")
    df = df[~df.model.isin(clash)].copy()
    # the file's other tasks have no reference scores: those its models can anchor are kept
    # (a sequential cut, in assemble); a borrowed reference drops the others, with a notice
    on_shared = set(df.model[df.benchmark.isin(shared)])
    dropped = {}
    for task in sorted(set(df.benchmark) - set(shared)):
        rows = df[(df.benchmark == task) & df.model.isin(on_shared)].drop_duplicates("model")
        short = _anchor_shortfall(rows.params)
        if short:
            dropped[task] = f"{task} ({short[0]} model(s) also on them, spanning {short[1]:.1f}×)"
    if dropped:
        notices.append(f"{path.name}: tasks without reference scores that too few of the file's "
                       f"models on the shared benchmarks anchor (at least {MIN_SHARED_MODELS} "
                       f"spanning {MIN_SHARED_SPAN:g}× in size) were dropped: "
                       f"{'; '.join(dropped.values())}")
        df = df[~df.benchmark.isin(list(dropped))]
    ref = ref[ref.benchmark.isin(shared)].copy()
    ref["line"] = 0
    ref["role"] = "reference"
    df["role"] = "target"
    notices.append(f"no reference models in {path.name}: using the bundled {bundled.name} dataset's "
                   f"{bundled.reference} family as reference on the shared benchmarks "
                   f"({', '.join(shared)})")
    merged = pd.concat([df, ref], ignore_index=True)
    for col in ("is_base", "specialist", "in_densing_paper", "note", "family"):
        if col in merged.columns:
            merged[col] = merged[col].fillna("")
    return merged


def _items_and_chance(df: pd.DataFrame, benchmarks, source) -> tuple[list[int], list[float]]:
    """Each task's item count and chance level: the file's n_items/chance columns, else the
    registry's entry of its benchmark."""
    chance, n_items = [], []
    for b in benchmarks:
        rows = df[df.benchmark == b]
        if rows.model.nunique() < 2:
            raise _fail(source, f"{_lines(rows.line)}, column 'benchmark': {_show(b)} has scores for "
                                f"{rows.model.nunique()} model only; drop it or add models")
        known = benchmark_registry.lookup(b)
        given_n = rows.n_items.dropna().unique() if "n_items" in rows.columns else []
        given_c = rows.chance.dropna().unique() if "chance" in rows.columns else []
        for col, given in (("n_items", given_n), ("chance", given_c)):
            if len(given) > 1:
                raise _fail(source, f"{_lines(rows.line)}, column {col!r}: benchmark {_show(b)} has "
                                    f"{len(given)} different values ({', '.join(f'{g:g}' for g in given)}); "
                                    "give one value per benchmark")
        if len(given_n):
            n_items.append(int(given_n[0]))
        elif known:
            n_items.append(known.n_items)
        else:
            raise _fail(source, f"{_lines(rows.line)}, column 'n_items': benchmark {_show(b)} is not in "
                                "the registry; add an n_items column with its number of questions "
                                "(and optionally a chance column with its random-guess score)")
        chance.append(float(given_c[0]) if len(given_c) else (known.chance if known else 0.0))

    return n_items, chance


def assemble(df: pd.DataFrame, config: Config, *, source: str, sha256: str = "",
             benchmarks=None, since=None, reference=None, notices=None) -> ScoreData:
    """Select, check and index a validated long table (from :func:`read_scores`)."""
    cfg = config.data
    benchmarks = list(cfg.benchmarks if benchmarks is None else benchmarks)
    since = cfg.since if since is None else since
    reference = cfg.reference if reference is None else reference
    notices = list(notices or [])
    warnings: list[str] = []
    df = df.copy()
    known_models = set(df.model)   # before any filter: data.exclude_models may name any of them

    if cfg.base_only and "is_base" in df.columns:
        drop = ~_flag(df, "is_base") & (df.is_base != "")
        if drop.any():
            notices.append(f"excluded {df.model[drop].nunique()} model(s) flagged is_base=false: "
                           f"{', '.join(sorted(df.model[drop].unique()))}")
            df = df[~drop]
    if cfg.exclude_specialists and "specialist" in df.columns:
        drop = _flag(df, "specialist")
        notices.append(f"excluded {df.model[drop].nunique()} specialist model(s)")
        df = df[~drop]
    if cfg.exclude_families:
        if "family" not in df.columns:
            raise _fail(source, "column 'family' is needed to exclude families")
        df = df[~df.family.isin(cfg.exclude_families)]
    if cfg.exclude_models:
        unknown = [m for m in cfg.exclude_models if m not in known_models]
        if unknown:
            hint = difflib.get_close_matches(unknown[0], sorted(known_models), n=3)
            raise _fail(source, f"column 'model': data.exclude_models names {', '.join(map(repr, unknown))}, "
                                f"not in the data; {'did you mean ' + ', '.join(hint) + '?' if hint else 'check the spelling against the model column'}")
        drop = df.model.isin(cfg.exclude_models)
        notices.append(f"excluded {df.model[drop].nunique()} model(s) by name: "
                       f"{', '.join(sorted(df.model[drop].unique()))}")
        df = df[~drop]

    present = sorted(df.benchmark.unique())
    if benchmarks:
        benchmarks = select_tasks(benchmarks, present, source)
        df = df[df.benchmark.isin(benchmarks)]
    else:
        benchmarks = present

    # roles
    if "family" not in df.columns:
        df["family"] = df.model
    df["family"] = df.family.replace("", np.nan).fillna(df.model)
    if reference:
        families = sorted(df.family.unique())
        if reference not in families:
            raise _fail(source, f"column 'family': reference family {reference!r} not found; "
                                f"give one of the families: {', '.join(families[:30])}{' …' if len(families) > 30 else ''}")
        df["role"] = np.where(df.family == reference, "reference", "target")
    elif "role" in df.columns and (df.role == "reference").any():
        df["role"] = df.role.replace("", "target")
    else:
        raise _fail(source, "no reference models: give --reference FAMILY (a family column value) "
                            "or a 'role' column with 'reference' for the reference models")
    ref = df[df.role == "reference"]
    sizes = ref.drop_duplicates("model").params
    if sizes.nunique() < 2:
        raise _fail(source, f"{_lines(ref.line)}, column 'params': the reference set needs at least 2 "
                            f"different sizes to fit the loss law; it has {sizes.nunique()} "
                            f"({', '.join(sorted(ref.model.unique()))}); choose a reference family "
                            "with several sizes")

    # date window, targets only
    targets = df.role == "target"
    if since:
        early = targets & (df.release_date < pd.Timestamp(since))
        df = df[~early]
    if cfg.until:
        late = (df.role == "target") & (df.release_date > pd.Timestamp(cfg.until))
        df = df[~late]
    tg = df[df.role == "target"]
    window = f" in the window {since or '…'} to {cfg.until or '…'}" if (since or cfg.until) else ""
    if tg.empty:
        raise _fail(source, f"column 'release_date': no target models{window}; widen --since/--until")
    if tg.release_date.nunique() < 2:
        raise _fail(source, f"{_lines(tg.line)}, column 'release_date': all target models share one "
                            f"release date ({tg.release_date.iloc[0]:%Y-%m-%d}); the trend over time "
                            "needs at least two dates")

    # tasks without a reference score are anchored later, by the shared models (sequential.py)
    anchored = [b for b in benchmarks if (df[df.benchmark == b].role == "reference").any()]
    if not anchored:
        raise _fail(source, f"column 'benchmark': no benchmark has a score from a reference "
                            f"model ({', '.join(benchmarks)}), so none can be mapped to effective "
                            "sizes; add reference scores, or choose another reference family")
    unanchored_tasks = [b for b in benchmarks if b not in anchored]
    loose = df[df.benchmark.isin(unanchored_tasks)].copy()
    df = df[df.benchmark.isin(anchored)]
    benchmarks = anchored
    n_items, chance = _items_and_chance(df, benchmarks, source)

    # parameter size used for density
    df["params_total"] = df.params
    if "params_active" not in df.columns:
        df["params_active"] = df.params
    df["params_active"] = df.params_active.fillna(df.params)
    if cfg.params == "active":
        df["params"] = df.params_active

    # models table: references by size, then targets by date
    cols = ["model", "family", "params", "params_total", "params_active", "tokens",
            "release_date", "role"]
    models = df.drop_duplicates("model")[cols]
    models = pd.concat([models[models.role == "reference"].sort_values(["params", "model"]),
                        models[models.role == "target"].sort_values(["release_date", "model"])],
                       ignore_index=True)
    models["t"] = config.model.months(models.release_date)

    index = {m: i for i, m in enumerate(models.model)}
    bindex = {b: j for j, b in enumerate(benchmarks)}
    obs = pd.DataFrame({"model_idx": df.model.map(index).to_numpy(),
                        "bench_idx": df.benchmark.map(bindex).to_numpy(),
                        "score": df.score.to_numpy(),
                        "loss": df["loss"].to_numpy() if "loss" in df.columns else np.nan})
    obs = obs.sort_values(["model_idx", "bench_idx"], ignore_index=True)
    obs["n"] = np.asarray(n_items)[obs.bench_idx]
    obs["k"] = np.rint(obs.score * obs.n).astype(int)

    # warnings: legal but out of range
    ref_max = models.params[models.role == "reference"].max()
    big = models[(models.role == "target") & (models.params > 10 * ref_max)]
    if len(big):
        warnings.append(f"{len(big)} target model(s) are over 10× the largest reference model "
                        f"({ref_max:g}B): {', '.join(big.model[:5])}; their effective sizes extrapolate")
    below = obs[obs.score < np.asarray(chance)[obs.bench_idx]]
    if len(below):
        warnings.append(f"{len(below)} score(s) are below their benchmark's chance level "
                        "(accepted: the likelihood allows it)")
    return ScoreData(models=models, benchmarks=benchmarks, chance=np.asarray(chance, dtype=float),
                     n_items=np.asarray(n_items, dtype=int), obs=obs, source=source, sha256=sha256,
                     date_origin=config.model.date_origin, since=since or "", reference=reference or "",
                     notices=notices, warnings=warnings,
                     unanchored=_unanchored(loose, models, config, source, notices))


def _anchor_shortfall(sizes: pd.Series) -> tuple[int, float] | None:
    """None when the models of ``sizes`` can anchor a task without reference scores
    (:data:`MIN_SHARED_MODELS` of them spanning :data:`MIN_SHARED_SPAN`); else how many there
    are and the ratio of their sizes."""
    n, span = len(sizes), (float(sizes.max() / sizes.min()) if len(sizes) else 0.0)
    return None if n >= MIN_SHARED_MODELS and span >= MIN_SHARED_SPAN else (n, span)


def _unanchored(loose: pd.DataFrame, models: pd.DataFrame, config: Config, source,
                notices: list[str]) -> pd.DataFrame:
    """The scores of the tasks without reference scores, one row per score (model, task,
    score, k, n, chance, params, t, shared: whether the model has an effective size from the
    anchored tasks). Each task needs :data:`MIN_SHARED_MODELS` shared models whose sizes span
    :data:`MIN_SHARED_SPAN`: its curve is fitted to their effective sizes (sequential.py)."""
    columns = ["model", "family", "benchmark", "score", "k", "n", "chance", "params",
               "release_date", "t", "shared"]
    if loose.empty:
        return pd.DataFrame(columns=columns)
    tasks = sorted(loose.benchmark.unique())
    n_items, chance = _items_and_chance(loose, tasks, source)
    out = loose.copy()
    if config.data.params == "active" and "params_active" in out.columns:
        out["params"] = out.params_active.fillna(out.params)
    out["n"] = out.benchmark.map(dict(zip(tasks, n_items))).astype(int)
    out["chance"] = out.benchmark.map(dict(zip(tasks, chance))).astype(float)
    out["k"] = np.rint(out.score * out.n).astype(int)
    out["t"] = config.model.months(out.release_date)
    targets = set(models.model[models.role == "target"])
    out["shared"] = out.model.isin(targets)
    for task in tasks:
        rows = out[out.benchmark == task]
        shared = rows[rows.shared]
        short = _anchor_shortfall(shared.params)
        if short:
            n, span = short
            raise _fail(source, f"{_lines(rows.line)}, column 'benchmark': task {_show(task)} has no "
                                f"reference scores, and {n} of its models have effective "
                                f"sizes from the other tasks (sizes spanning {span:.1f}×); anchoring "
                                f"its curve needs at least {MIN_SHARED_MODELS} such models spanning "
                                f"{MIN_SHARED_SPAN:g}× in size; drop it (--benchmarks) or add "
                                "reference scores")
    only = sorted(set(out.model[~out.shared]))
    notices.append(f"{len(tasks)} task(s) without reference scores ({', '.join(tasks)}) are "
                   f"anchored by the models they share with the other tasks (a sequential cut)"
                   + (f"; {len(only)} model(s) seen only there get effective sizes from them "
                      "and stay out of the trend" if only else ""))
    return out[columns].sort_values(["benchmark", "model"], ignore_index=True)
