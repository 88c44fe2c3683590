"""The bad-input catalogue: every case goes through ``bayes-densing sample`` and must end with
exit code 2, one line on stderr that names the file (and the row and column where there is
one) and says how to fix it, and nothing written at ``--out``.

Legal but unusual input (percentages, raw parameter counts, a model far larger than the
references, scores below chance, names that look like spreadsheet formulas) is accepted with a
notice or a warning in the summary instead; those cases run the whole command on a replayed
posterior (``replay_sampler``) and check what the summary and the report say.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bayes_densing.cli.app import app
from bayes_densing.config import Config
from bayes_densing.data import MAX_NAME, load

HEADER = "model,family,params,tokens,release_date,benchmark,score,role"
ROWS = [
    "r1,Ref,1,2,2023-01-01,mmlu,0.30,reference",
    "r1,Ref,1,2,2023-01-01,gsm8k,0.05,reference",
    "r2,Ref,8,2,2023-01-01,mmlu,0.55,reference",
    "r2,Ref,8,2,2023-01-01,gsm8k,0.30,reference",
    "t1,A,3,,2023-06-01,mmlu,0.50,target",          # line 6
    "t1,A,3,,2023-06-01,gsm8k,0.20,target",         # line 7
    "t2,B,7,,2023-09-01,mmlu,0.62,target",          # line 8
    "t2,B,7,,2023-09-01,gsm8k,0.40,target",         # line 9
    "t3,C,2,,2024-02-01,mmlu,0.52,target",          # line 10
    "t3,C,2,,2024-02-01,gsm8k,0.25,target",         # line 11
]
GOOD = "\n".join([HEADER, *ROWS]) + "\n"


def edit(*pairs: tuple[str, str], add: str = "") -> bytes:
    """GOOD with each (old, new) replaced once, plus extra lines."""
    text = GOOD
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    return (text + add).encode()


WIDE_HEADER = "model,family,params,tokens,release_date,role,mmlu,gsm8k\n"
WIDE = (WIDE_HEADER + "r1,Ref,1,2,2023-01-01,reference,0.30,0.05\n"
        "r2,Ref,8,2,2023-01-01,reference,0.55,0.30\nt1,A,3,,2023-06-01,target,0.50,0.20\n"
        "t2,B,7,,2023-09-01,target,,\nt3,C,2,,2024-02-01,target,0.52,0.25\n")
LONG_NAME = "m" * 10_000
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01"

# case: (file contents, or None for no file; extra options; words the message must contain)
CATALOGUE: dict[str, tuple[bytes | None, list[str], list[str]]] = {
    "missing file": (None, [], ["file not found", "give the path"]),
    "empty file": (b"", [], ["empty", "header row"]),
    "whitespace only": (b"\n \n\n", [], ["empty"]),
    "header only": (HEADER.encode() + b"\n", [], ["row 1", "no data rows", "add one row"]),
    "one data row": ("\n".join([HEADER, ROWS[0]]).encode(), [], ["row 2", "single data row"]),
    "binary file (PNG)": (PNG, [], ["binary file", "export the scores as CSV"]),
    "not a CSV (JSON)": (b'{"model": "x", "score": 0.5}\n{"model": "y", "score": 0.6}\n', [],
                         ["row 1", "not a scores CSV", "comma-separated"]),
    "non-UTF-8 bytes": (edit(("t2,B", "t\xe92,B")).replace("é".encode(), b"\xe9"), [],
                        ["row 8", "not UTF-8", "save the file as UTF-8"]),
    "missing required column": (GOOD.replace(",release_date", "").replace(",2023-01-01", "")
                                .replace(",2023-06-01", "").replace(",2023-09-01", "")
                                .replace(",2024-02-01", "").encode(), [],
                                ["row 1", "missing required column release_date", "add it"]),
    "score column without benchmark": (GOOD.replace("benchmark,", "bench,").encode(), [],
                                       ["row 1", "missing column 'benchmark'", "wide format"]),
    "duplicate header column": (GOOD.replace(",role", ",family").encode(), [],
                                ["row 1", "column 'family'", "appears twice"]),
    "duplicate rows, different scores": (edit(add="t2,B,7,,2023-09-01,mmlu,0.70,target\n"), [],
                                         ["rows 8, 12", "column 'score'", "2 different scores",
                                          "keep one row"]),
    "negative score": (edit(("0.62,target", "-0.62,target")), [],
                       ["row 8", "column 'score'", "negative", "fractions in [0, 1]"]),
    "score above 100": (edit(("0.62,target", "162,target")), [],
                        ["row 8", "column 'score'", "above 1", "fractions in [0, 1]"]),
    "fractions and percentages mixed": (edit(("0.62,target", "62,target")), [],
                                        ["row 8", "column 'score'", "mixes fractions and percentages",
                                         "one unit per benchmark"]),
    "score not a number": (edit(("0.62,target", "62%,target")), [],
                           ["row 8", "column 'score'", "'62%' is not a number", "plain number"]),
    "negative params": (edit(("t1,A,3,", "t1,A,-3,"), ("t1,A,3,", "t1,A,-3,")), [],
                        ["rows 6, 7", "column 'params'", "positive", "in billions"]),
    "zero params": (edit(("t2,B,7,", "t2,B,0,"), ("t2,B,7,", "t2,B,0,")), [],
                    ["rows 8, 9", "column 'params'", "positive"]),
    "NaN params": (edit(("t2,B,7,", "t2,B,NaN,"), ("t2,B,7,", "t2,B,NaN,")), [],
                   ["rows 8, 9", "column 'params'", "'NaN' is not a number"]),
    "missing params": (edit(("t2,B,7,", "t2,B,,"), ("t2,B,7,", "t2,B,,")), [],
                       ["rows 8, 9", "column 'params'", "missing value", "fill it in"]),
    "params differ between rows": (edit(("t2,B,7,", "t2,B,8,")), [],
                                   ["rows 8, 9", "column 'params'", "2 different values",
                                    "same on every row"]),
    "formula as params": (edit(("t2,B,7,", "t2,B,=2+5,"), ("t2,B,7,", "t2,B,=2+5,")), [],
                          ["rows 8, 9", "column 'params'", "'=2+5' is not a number", "no formulas"]),
    "unparseable date": (edit(("2023-09-01", "Sept 2023"), ("2023-09-01", "Sept 2023")), [],
                         ["rows 8, 9", "column 'release_date'", "'Sept 2023' is not a date",
                          "YYYY-MM-DD"]),
    "impossible date": (edit(("2023-09-01", "2023-13-45"), ("2023-09-01", "2023-13-45")), [],
                        ["rows 8, 9", "column 'release_date'", "not a date"]),
    "future date": (edit(("2023-09-01", "2099-01-01"), ("2023-09-01", "2099-01-01")), [],
                    ["rows 8, 9", "column 'release_date'", "in the future", "check the year"]),
    "model with no scores (long)": (edit(("0.62,target", ",target"), ("0.40,target", ",target")), [],
                                    ["rows 8, 9", "column 'score'", "'t2' has no scores",
                                     "fill in its scores or delete"]),
    "model with no scores (wide)": (WIDE.encode(), [],
                                    ["row 5", "columns mmlu, gsm8k", "'t2' has no scores"]),
    "empty model name": (edit(("t2,B,7,", ",B,7,")), [], ["row 8", "column 'model'", "empty model name; fill it in"]),
    "extremely long model name": (edit(("t2,B", f"{LONG_NAME},B"), ("t2,B", f"{LONG_NAME},B")), [],
                                  ["rows 8, 9", "column 'model'", f"longer than {MAX_NAME}",
                                   "shorten it"]),
    "unknown role": (edit(("0.62,target", "0.62,targt")), [],
                     ["row 8", "column 'role'", "'targt'", "write one of those"]),
    "benchmark with one model only": (edit(add="t2,B,7,,2023-09-01,arc_challenge,0.6,target\n"), [],
                                      ["row 12", "column 'benchmark'", "'arc_challenge' has scores for 1 model",
                                       "drop it or add models"]),
    "benchmark without reference scores": (edit(add="t1,A,3,,2023-06-01,arc_challenge,0.5,target\n"
                                                    "t2,B,7,,2023-09-01,arc_challenge,0.6,target\n"), [],
                                           ["rows 12, 13", "column 'benchmark'", "has no reference scores",
                                            "add reference scores"]),
    "unknown benchmark without n_items": (GOOD.replace("gsm8k", "mybench").encode(), [],
                                          ["column 'n_items'", "'mybench' is not in the registry",
                                           "add an n_items column"]),
    "n_items not a whole number": (edit(("role", "role,n_items"), *[(r, r + ",1.5") for r in ROWS]), [],
                                   ["column 'n_items'", "whole number"]),
    "chance out of range": (edit(("role", "role,chance"), *[(r, r + ",1.5") for r in ROWS]), [],
                            ["column 'chance'", "must be in [0, 1)"]),
    "reference family not present": (GOOD.encode(), ["--reference", "Nope"],
                                     ["column 'family'", "reference family 'Nope' not found", "give one of the families: A, B, C, Ref"]),
    "reference family with one size": (GOOD.encode(), ["--reference", "A"],
                                       ["rows 6, 7", "column 'params'", "at least 2 different sizes", "choose a reference family"]),
    "no references, no shared benchmark": (GOOD.replace(",reference", ",").replace(",target", ",")
                                           .replace("mmlu", "foo").replace("gsm8k", "bar")
                                           .replace(",role", ",n_items").replace(",\n", ",100\n")
                                           .encode(), [],
                                           ["column 'benchmark'", "no reference models given",
                                            "add reference models with a role column"]),
    "no targets after --since": (GOOD.encode(), ["--since", "2025-01-01"],
                                 ["column 'release_date'", "no target models in the window 2025-01-01",
                                  "widen --since/--until"]),
    "all targets on one date": (edit(*[(d, "2023-06-01") for d in ("2023-09-01", "2023-09-01",
                                                                   "2024-02-01", "2024-02-01")]), [],
                                ["rows 6, 7, 8, 9, 10, 11", "column 'release_date'",
                                 "share one release date", "at least two dates"]),
    "negative tokens": (edit(("r1,Ref,1,2,", "r1,Ref,1,-2,"), ("r1,Ref,1,2,", "r1,Ref,1,-2,")), [],
                        ["rows 2, 3", "column 'tokens'", "must be positive", "in trillions"]),
    "excluded model not in the data": (GOOD.encode(), ["--set", "data.exclude_models=t9"],
                                       ["column 'model'", "names 't9', not in the data; check the spelling"]),
}


def test_the_catalogue_has_at_least_20_cases():
    assert len(CATALOGUE) >= 20


@pytest.mark.parametrize("case", list(CATALOGUE))
def test_bad_input_is_refused_with_one_clear_line(case, tmp_path, small_args, no_sampling,
                                                  leftovers):
    contents, extra, words = CATALOGUE[case]
    path = tmp_path / "scores.csv"
    if contents is not None:
        path.write_bytes(contents)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["sample", "--data", str(path), *small_args, *extra,
                                      "--out", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith(f"error: {path}: "), line
    for word in words:
        assert word in line, (word, line)
    assert len(line) < 600, line                     # a long cell is cut short in the message
    assert "Traceback" not in result.output and result.stdout == ""
    assert not out.exists() and leftovers(out) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == (["scores.csv"] if contents is not None else [])


def test_a_file_without_references_borrows_the_bundled_family(tmp_path):
    """Not an error: with no role column and no --reference, the bundled Qwen1.5 models serve
    as references on the shared benchmarks (data.load's documented fallback)."""
    text = GOOD.replace(",role", "").replace(",reference", "").replace(",target", "")
    text = "\n".join(line for line in text.splitlines() if not line.startswith("r"))
    path = tmp_path / "scores.csv"
    path.write_text(text + "\n")
    data = load(Config(), path)
    assert set(data.references.family) == {"Qwen1.5"} and data.n_target == 3


# --- legal but unusual: a notice or a warning, and the run goes ahead ----------------------------

FORMULA = "=cmd|' /C calc'!A0"
SCRIPT = "<script>alert(1)</script>"


def unusual(synth) -> tuple[pd.DataFrame, dict]:
    """The shared synthetic file with the unusual features; same models, benchmarks and order,
    so the recorded posterior of lib_run can be replayed against it."""
    df = synth.df.copy()
    names = sorted(df[df.role == "target"].model.unique())
    rename = {names[0]: FORMULA, names[1]: SCRIPT}
    df["model"] = df.model.replace(rename)
    df.loc[df.benchmark == "arc_challenge", "score"] *= 100          # a benchmark in percent
    huge = df.model == names[2]
    df.loc[huge, "params"] = 1000.0                                  # 14× the largest reference
    raw = df.model == names[3]
    df.loc[raw, "params"] = df.loc[raw, "params"] * 1e9              # a raw count
    low = df.index[(df.model == names[4]) & (df.benchmark == "mmlu")]
    df.loc[low, "score"] = 0.05                                      # below mmlu's chance 0.25
    return df, rename


def test_unusual_but_legal_input_runs_with_notices_and_warnings(tmp_path, synth, small_args,
                                                                replay_sampler):
    df, rename = unusual(synth)
    path = tmp_path / "unusual.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["sample", "--data", str(path), *small_args, "--out", str(out),
                                      "--allow-warnings"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, (result.output, result.exception)
    assert replay_sampler["n"] == 1
    summary = (out / "summary.txt").read_text()
    assert "scores of 'arc_challenge' are percentages (max" in summary
    assert "had raw parameter counts" in summary
    assert "1 target model(s) are over 10× the largest reference model" in summary
    fraction = df.score.where(df.benchmark != "arc_challenge", df.score / 100)
    below = int((fraction < 0.25).sum())   # both benchmarks have chance 0.25: the one set + drawn
    assert below >= 2
    assert f"{below} score(s) are below their benchmark's chance level" in summary
    assert "begin like a spreadsheet formula; they are kept as plain text" in summary
    diag = json.loads((out / "diagnostics.json").read_text())
    assert len(diag["warnings"]) == 2 and len(diag["notices"]) >= 3

    # the names are data, never markup: escaped in the HTML report, verbatim in models.csv
    page = (out / "report.html").read_text()
    assert SCRIPT not in page and "<script" not in page.lower()
    assert html.escape(SCRIPT) in page
    assert FORMULA in (out / "models.csv").read_text()
    models = pd.read_csv(out / "models.csv")
    assert {FORMULA, SCRIPT} <= set(models.model)


def test_a_formula_cell_is_read_as_text(tmp_path):
    path = tmp_path / "scores.csv"
    path.write_bytes(edit(("t2,B", f'"{FORMULA}",B'), ("t2,B", f'"{FORMULA}",B')))
    data = load(Config(), path)
    assert FORMULA in set(data.models.model)
    assert any("spreadsheet formula" in n for n in data.notices)
