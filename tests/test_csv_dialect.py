"""CSV dialects: the separator (',', ';', tab) and the decimal mark (0.62 or 0,62) of a scores file.

Each file is written here by hand (or with the csv module, quoting only where a spreadsheet
would), in the shape a spreadsheet exports it. A dialect that can be read unambiguously must give
exactly the table the plain comma-separated file gives; one that cannot is refused with one line
naming the file, the row and the column.
"""

from __future__ import annotations

import csv
import io

import pandas as pd
import pytest
from typer.testing import CliRunner

from bayes_densing.cli.app import app
from bayes_densing.config import Config
from bayes_densing.data import DataError, load, read_scores

HEADER = ["model", "family", "params", "tokens", "release_date", "benchmark", "score", "role"]
ROWS = [
    ["r1", "Ref", "1", "2.5", "2023-01-01", "mmlu", "0.30", "reference"],       # line 2
    ["r1", "Ref", "1", "2.5", "2023-01-01", "gsm8k", "0.05", "reference"],      # line 3
    ["r2", "Ref", "8", "2.5", "2023-01-01", "mmlu", "0.55", "reference"],       # line 4
    ["r2", "Ref", "8", "2.5", "2023-01-01", "gsm8k", "0.30", "reference"],      # line 5
    ["t1", "A", "3.8", "", "2023-06-01", "mmlu", "0.50", "target"],             # line 6
    ["t1", "A", "3.8", "", "2023-06-01", "gsm8k", "0.20", "target"],            # line 7
    ["t2", "B", "7", "", "2023-09-01", "mmlu", "0.62", "target"],               # line 8
    ["t2", "B", "7", "", "2023-09-01", "gsm8k", "0.40", "target"],              # line 9
    ["t3", "C", "1.5e9", "", "2024-02-01", "mmlu", "0.52", "target"],           # line 10
    ["t3", "C", "1.5e9", "", "2024-02-01", "gsm8k", "0.25", "target"],          # line 11
]
NUMERIC = {"params", "tokens", "score"}
COMMA_NAME = "acme/model, v2"


def export(rows=ROWS, header=HEADER, sep=",", mark=".", *, bom=False, crlf=False,
           **cells) -> bytes:
    """The table as a spreadsheet saves it: numbers with the locale's decimal mark, a cell quoted
    only when it holds the separator or a quote, optionally a UTF-8 BOM and CRLF line ends.
    ``cells`` replace cells as written, after the decimal mark: ``score_8="0.62"`` sets the
    score on line 8 (the header is line 1)."""
    rows = [[cell.replace(".", mark) if col in NUMERIC else cell for col, cell in zip(header, row)]
            for row in rows]
    for key, value in cells.items():
        col, line = key.rsplit("_", 1)
        rows[int(line) - 2][header.index(col)] = value
    out = io.StringIO()
    writer = csv.writer(out, delimiter=sep, lineterminator="\r\n" if crlf else "\n")
    writer.writerows([header, *rows])
    return (b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode()


def write(tmp_path, contents: bytes | str, name="scores.csv"):
    path = tmp_path / name
    path.write_bytes(contents if isinstance(contents, bytes) else contents.encode())
    return path


@pytest.fixture
def plain(tmp_path):
    """The table read from today's format: comma-separated, decimal points."""
    df, notices = read_scores(write(tmp_path, export(), "plain.csv"))
    assert notices == [f"plain.csv: column 'params' had raw parameter counts (e.g. 1.5e+09) in "
                       "rows 10, 11; read as 1.5 billion"]
    return df


# --- accepted dialects: the same table as the plain file ------------------------------------------

DIALECTS = {
    # name: (file contents, the dialect notice, or None for none)
    "comma, points (today's format)": (export(), None),
    "comma, points, BOM and CRLF": (export(bom=True, crlf=True), None),
    "';', decimal commas (Excel/LibreOffice, European locale)":
        (export(sep=";", mark=","), "read as ';'-separated with decimal commas (a spreadsheet export)"),
    "';', decimal commas, BOM and CRLF (Excel 'CSV UTF-8')":
        (export(sep=";", mark=",", bom=True, crlf=True),
         "read as ';'-separated with decimal commas (a spreadsheet export)"),
    "';', points": (export(sep=";"), "read as ';'-separated"),
    "tab, points": (export(sep="\t"), "read as tab-separated"),
    "tab, decimal commas": (export(sep="\t", mark=","),
                            "read as tab-separated with decimal commas (a spreadsheet export)"),
    "comma, quoted decimal commas (a spreadsheet in a European locale)":
        (export(mark=","), "read as comma-separated with decimal commas (a spreadsheet export)"),
}


@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_every_accepted_dialect_gives_the_plain_table(dialect, tmp_path, plain):
    """Fault: a separator or decimal mark misread (a column shifted, 0,62 read as 62 or as a
    string, the BOM glued to 'model', CR left on 'role'), or a notice missing or spurious."""
    contents, notice = DIALECTS[dialect]
    df, notices = read_scores(write(tmp_path, contents))
    pd.testing.assert_frame_equal(df, plain, check_exact=True)
    dialect_notices = [n for n in notices if "-separated" in n]
    assert dialect_notices == ([f"scores.csv: {notice}"] if notice else [])


def test_the_dialect_notice_reaches_the_run(tmp_path):
    """Fault: the notice is made but dropped before ScoreData.notices (which the summary prints)."""
    data = load(Config(), write(tmp_path, export(sep=";", mark=",", bom=True, crlf=True)))
    assert data.notices[0] == ("scores.csv: read as ';'-separated with decimal commas "
                               "(a spreadsheet export)")
    assert data.n_ref == 2 and data.n_target == 3


def test_semicolon_export_written_by_hand(tmp_path, plain):
    """A LibreOffice export as it lands on disk: text cells quoted, decimal commas, CRLF, BOM.
    Fault: quotes kept in the cells, or a quoted cell taken for a number."""
    text = ('\ufeff"model";"family";"params";"tokens";"release_date";"benchmark";"score";"role"\r\n'
            + "".join(";".join(f'"{c}"' if col not in NUMERIC else c.replace(".", ",")
                               for col, c in zip(HEADER, row)) + "\r\n" for row in ROWS))
    df, _ = read_scores(write(tmp_path, text.encode()))
    pd.testing.assert_frame_equal(df, plain, check_exact=True)


def test_wide_semicolon_file_with_decimal_commas(tmp_path):
    """Fault: decimal commas converted only after the wide table is melted, so an unregistered
    benchmark column of '0,41' cells is not recognised as scores and silently dropped."""
    text = ("model;family;params;release_date;role;mmlu;gsm8k;mybench\n"
            "r1;Ref;1;2023-01-01;reference;0,30;0,05;0,11\n"
            "r2;Ref;8;2023-01-01;reference;0,55;0,30;0,41\n"
            "t1;A;3,8;2023-06-01;target;0,50;0,20;\n"
            "t2;B;7;2023-09-01;target;0,625;0,40;0,33\n")
    df, notices = read_scores(write(tmp_path, text))
    assert sorted(df.benchmark.unique()) == ["gsm8k", "mmlu", "mybench"]
    score = df.set_index(["model", "benchmark"]).score
    assert score["r2", "mybench"] == 0.41 and score["t2", "mmlu"] == 0.625
    assert ("t1", "mybench") not in score.index                 # an empty cell: no score
    assert df[df.model == "t1"].params.iloc[0] == 3.8
    assert notices == ["scores.csv: read as ';'-separated with decimal commas (a spreadsheet export)"]


@pytest.mark.parametrize("sep, mark", [(",", "."), (";", ","), (";", "."), ("\t", ",")])
def test_a_quoted_model_name_with_a_comma_is_kept_whole(sep, mark, tmp_path):
    """Fault: the comma inside the quoted name splits the row (comma file), or the decimal-comma
    conversion touches text cells (';' file: 'acme/model. v2')."""
    contents = export(sep=sep, mark=mark, model_6=COMMA_NAME, model_7=COMMA_NAME)
    if sep == ",":
        assert f'"{COMMA_NAME}"'.encode() in contents           # the csv module quoted it
    df, _ = read_scores(write(tmp_path, contents))
    assert COMMA_NAME in set(df.model) and len(df) == len(ROWS)
    assert df[df.model == COMMA_NAME].params.tolist() == [3.8, 3.8]


def test_commas_in_cells_do_not_fool_the_separator(tmp_path):
    """A ';' file whose names and notes are full of commas (a note "['base', 'chat', 'code']" is
    enough for csv.Sniffer to answer ','): the header, split into known column names, decides.
    Fault: the separator guessed from the cells rather than the header."""
    note = "['base', 'chat', 'code']"
    rows = [row + [note] for row in ROWS]
    contents = export(rows, HEADER + ["note"], sep=";", mark=",", model_8="x, y, z",
                      model_9="x, y, z")
    df, notices = read_scores(write(tmp_path, contents))
    assert set(df.note) == {note} and "x, y, z" in set(df.model)
    assert df.score.tolist() == [float(r[6]) for r in ROWS]
    assert notices[0] == "scores.csv: read as ';'-separated with decimal commas (a spreadsheet export)"


def test_text_columns_are_not_numbers(tmp_path):
    """Notes like '1.234' or '0,5' in a decimal-comma file are text. Fault: text columns scanned
    for the decimal mark (the file refused as mixing marks, or '0,5' rewritten as '0.5')."""
    notes = ["1.234", "0,5", "v2.0", "7", "", "1,234.5", "0.5", "a; b", "", "x"]
    rows = [row + [n] for row, n in zip(ROWS, notes)]
    df, _ = read_scores(write(tmp_path, export(rows, HEADER + ["note"], sep=";", mark=",")))
    assert df.note.tolist() == notes


def test_a_misspelt_semicolon_header_is_reported_column_by_column(tmp_path):
    """No known column names: csv.Sniffer's guess still splits the header at ';'. Fault: the
    message shows one long column 'modell;params;…' instead of the columns as written."""
    text = "modell;params;datum;benchmark;score\nx;1;2023-01-01;mmlu;0,3\ny;2;2023-01-01;mmlu;0,4\n"
    with pytest.raises(DataError) as err:
        read_scores(write(tmp_path, text))
    assert "missing required columns model, release_date (found: modell, params, datum, " in str(err.value)


def test_dates_are_left_to_the_date_check(tmp_path):
    """A European date is not taken for a number with decimal marks. Fault: '01.06.2023' reported
    as a thousands separator (or converted) instead of as a date to rewrite."""
    contents = export(sep=";", mark=",", release_date_6="01.06.2023", release_date_7="01.06.2023")
    with pytest.raises(DataError) as err:
        read_scores(write(tmp_path, contents))
    assert "rows 6, 7, column 'release_date': '01.06.2023' is not a date; write YYYY-MM-DD" in str(err.value)


# --- refused: ambiguous or broken files, through the command line ---------------------------------

REFUSED = {
    # name: (file contents, words the one-line message must contain)
    "a column mixing 0,62 and 0.62 (';' file)":
        (export(sep=";", mark=",", score_8="0.62"),
         ["row 8, column 'score': '0.62' has a decimal point but other rows of this column have "
          "decimal commas (e.g. '0,30' in row 2)", "write 0,62"]),
    "a column mixing 0.62 and 0,62 (';' file, mostly points)":
        (export(sep=";", score_8="0,62"),
         ["row 8, column 'score': '0,62' has a decimal comma but other rows of this column have "
          "decimal points", "write 0.62"]),
    "a point in one column of a decimal-comma file":
        (export(sep=";", mark=",", params_6="3.8", params_7="3.8", params_10="2", params_11="2"),
         ["rows 6, 7, column 'params': '3.8' has a decimal point but the file has decimal commas "
          "(e.g. '2,5' in row 2, column 'tokens')", "write 3,8"]),
    "1.234 in a decimal-comma file (BOM, CRLF)":
        (export(sep=";", mark=",", bom=True, crlf=True, tokens_2="1.234", tokens_3="1.234",
                tokens_4="1.234", tokens_5="1.234"),
         ["rows 2, 3, 4, 5, column 'tokens': '1.234' is ambiguous in a file with decimal commas",
          "1234 with a thousands separator, or 1.234 with a decimal point?", "write 1234 or 1,234"]),
    "1,234 in a file with decimal points":
        (export(sep=";", tokens_2="1,234", tokens_3="1,234"),
         ["rows 2, 3, column 'tokens': '1,234' is ambiguous in a file with decimal points",
          "or 1.234 with a decimal comma?", "write 1234 or 1.234"]),
    "1,234 and nothing to tell the mark":
        (export(sep=";", **{f"tokens_{i}": "1,500" for i in (2, 3, 4, 5)},
                **{f"params_{i}": "3" for i in (6, 7, 10, 11)},
                **{f"score_{i}": "30" for i in range(2, 12)}),
         ["rows 2, 3, 4, 5, column 'tokens': '1,500' is ambiguous: 1500 with a thousands "
          "separator, or 1.500 with a decimal comma?"]),
    "a thousands separator in a file with decimal points (quoted)":
        (export(params_8="1,234.5", params_9="1,234.5"),
         ["rows 8, 9, column 'params': '1,234.5' has a thousands separator; write the number "
          "without it (1234.5)"]),
    "a thousands separator in a decimal-comma file":
        (export(sep=";", mark=",", params_8="1.234,5", params_9="1.234,5"),
         ["rows 8, 9, column 'params': '1.234,5' has a thousands separator", "(1234,5)"]),
    "a decimal comma splitting a row of a comma file":
        (export().replace(b"0.62", b"0,62"),
         ["row 8, column 'score': 9 cells where the header has 8; '0,62' has a decimal comma, "
          "which splits it in two in a comma-separated file; write 0.62"]),
    "decimal commas on every row of a comma file (pandas would shift the columns)":
        (export(sep=",", mark=",").replace(b'"', b""),
         ["row 2: 10 cells where the header (row 1) has 8", "write numbers with a decimal point "
          "(0.62, not 0,62)"]),
    "an unquoted name with a comma":
        (export().replace(b"t2,B", b"acme/model, v2,B"),
         ["row 8: 9 cells where the header (row 1) has 8; a comma inside a cell splits it in two: "
          "put a cell that holds a comma in double quotes (\"acme/model, v2\")"]),
    "a trailing comma":
        (export().replace(b"0.62,target", b"0.62,target,"),
         ["row 8: 9 cells where the header (row 1) has 8; the row ends with 1 extra comma"]),
    "an extra ';' in a ';' file":
        (export(sep=";", mark=",").replace(b"t2;B", b"t2;;B"),
         ["row 8: 9 cells where the header (row 1) has 8; a ';' inside a cell splits it in two"]),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_an_ambiguous_or_broken_dialect_is_refused_with_one_clear_line(case, tmp_path, small_args,
                                                                      no_sampling, leftovers):
    """Fault: a guess (1.234 read as 1.234 among decimal commas, a shifted column), a pandas
    tokenizer message, a traceback, or anything written at --out."""
    contents, words = REFUSED[case]
    path = write(tmp_path, contents)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["sample", "--data", str(path), *small_args,
                                      "--out", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {path}: "), lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert "Traceback" not in result.output and result.stdout == ""
    assert not out.exists() and leftovers(out) == []
