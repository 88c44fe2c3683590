"""The run report (report.md + self-contained report.html), on a copy of the shared ``lib_run``.

Nothing here samples: every test copies lib_run's run directory and edits the copy (figures
manifest, diagnostics.json, models.csv) before writing the report.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bayes_densing.results import rundir
from bayes_densing.figures.report import Code, md, to_markdown, Report, Section, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
VOID = {"meta", "img", "br", "hr", "link", "input", "source", "col", "area", "base", "wbr"}
SCRIPT = "<script>alert(1)</script>"
CSV_INJECTION = "=cmd|' /C calc'!A0"


class Parsed(HTMLParser):
    """Tags, attributes and text of an HTML document; records unbalanced tags."""

    def __init__(self, source: str):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.tags, self.attrs, self.text = [], [], [], [], []
        self.feed(source)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(tag, k, v or "") for k, v in attrs]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def _png(path: Path, label: str) -> None:
    fig = Figure(figsize=(2, 1.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot([0, 1, 2], [0, 1, 0])
    ax.set_title(label)
    fig.savefig(path, dpi=50)


def _figures(run: Path) -> None:
    fig_dir = run / "figures"
    fig_dir.mkdir()
    entries = []
    for name in ("trend", "densities"):
        _png(fig_dir / f"{name}.png", name)
        entries.append({"name": name, "title": f"The {name} figure",
                        "caption": f"Caption of {name}.", "png": f"figures/{name}.png",
                        "svg": f"figures/{name}.svg"})
    entries.append({"name": "changepoint", "skipped": "not a changepoint run"})
    (fig_dir / "index.json").write_text(json.dumps(entries))


def _copy(lib_run, dest: Path) -> Path:
    """lib_run's run directory copied to ``dest``, without the figures and report fit wrote."""
    shutil.copytree(lib_run.out, dest)
    shutil.rmtree(dest / "figures", ignore_errors=True)
    for name in ("report.md", "report.html"):
        (dest / name).unlink(missing_ok=True)
    return dest


@pytest.fixture
def run(lib_run, tmp_path) -> Path:
    """A copy of lib_run's run directory with two small real figures and one skipped entry."""
    out = _copy(lib_run, tmp_path / "run")
    _figures(out)
    return out


def _edit_diagnostics(run: Path, **changes) -> dict:
    path = run / "diagnostics.json"
    d = json.loads(path.read_text())
    d.update(changes)
    path.write_text(json.dumps(d))
    rundir.write_manifest(run, "run", rundir.RUN_CORE)    # a run made so on purpose, not damaged
    return d


def _passing(run: Path, **changes) -> dict:
    good = dict(problems=[], divergences=0, max_rhat=1.001, min_ess_bulk=1500.0,
                min_ess_tail=1200.0, min_bfmi=0.9)
    return _edit_diagnostics(run, **{**good, **changes})


def _report(run: Path) -> tuple[str, str]:
    md_path, html_path = write_report(run)
    return md_path.read_text(encoding="utf-8"), html_path.read_text(encoding="utf-8")


def test_writes_both_files(run):
    md_path, html_path = write_report(run)
    assert (md_path, html_path) == (run / "report.md", run / "report.html")
    assert md_path.stat().st_size > 1000 and html_path.stat().st_size > 1000
    text = md_path.read_text()
    assert text.startswith(f"# bayes-densing report: {run.name}")
    order = ["Diagnostics", "## Data", "## Doubling time", "## Densest and least dense models",
             "## Figures", "## Reproduce"]
    positions = [text.index(h) for h in order]
    assert positions == sorted(positions)


def test_markdown_has_doubling_numbers_and_ok_verdict(run):
    d = _passing(run, command="bayes-densing sample --data x.csv --out run")
    md_text, _ = _report(run)
    dbl = d["doubling"]
    lo, hi = dbl["hdi_months"]
    assert f"{dbl['median_months']:.2f} months" in md_text
    assert f"{lo:.2f}–{hi:.2f} months" in md_text
    for m, p in dbl["p_leq"].items():
        assert f"P(T ≤ {m} months) | {p:.3f}" in md_text or not 0 < p < 1
    assert "Diagnostics: OK — the sampler's checks passed" in md_text
    assert "FAILED" not in md_text
    assert f"{d['classic']['doubling_months']:.2f} months" in md_text     # the paper's point method
    assert "bayes-densing sample --data x.csv --out run" in md_text        # the command, verbatim
    assert d["input_sha256"] in md_text
    assert "[sampler]" in md_text                                          # the config TOML
    assert "![The trend figure](figures/trend.png)" in md_text
    assert "Not drawn for this run: changepoint (not a changepoint run)." in md_text


def test_html_is_balanced_self_contained_and_embeds_pngs(run):
    _, html_text = _report(run)
    doc = Parsed(html_text)
    assert not doc.errors and not doc.stack, (doc.errors, doc.stack)
    assert "script" not in doc.tags and "link" not in doc.tags
    srcs = [v for tag, k, v in doc.attrs if tag == "img" and k == "src"]
    assert len(srcs) == 2
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1], validate=True).startswith(PNG_MAGIC)
    assert all(v for tag, k, v in doc.attrs if tag == "img" and k == "alt")
    for _, key, value in doc.attrs:
        assert not re.search(r"https?://", value), (key, value[:80])
        if key in ("src", "href"):
            assert value.startswith("data:"), (key, value[:80])
    assert "http://" not in html_text and "https://" not in html_text
    assert "Caption of trend." in "".join(doc.text)


def test_failed_diagnostics_are_a_warning_above_the_doubling_time(run):
    _passing(run, divergences=7, problems=["7 divergent transitions"])
    md_text, html_text = _report(run)
    assert "Diagnostics: OK" not in md_text
    assert md_text.index("Diagnostics: FAILED") < md_text.index("## Doubling time")
    assert md_text.index("7 divergent transitions") < md_text.index("## Doubling time")
    assert html_text.index('<section class="warn">') < html_text.index("<h2>Doubling time</h2>")
    assert "7 divergent transitions" in html_text


def test_numbers_that_fail_are_flagged_even_if_problems_is_empty(run):
    _passing(run, min_bfmi=0.1)          # diagnostics.json claims no problems; E-BFMI fails
    md_text, _ = _report(run)
    assert "Diagnostics: FAILED" in md_text and r"E-BFMI 0.10 \< 0.3" in md_text


def test_data_strings_are_escaped(run):
    models = pd.read_csv(run / "models.csv")
    targets = models.index[models.role == "target"]
    models.loc[targets[0], "model"] = SCRIPT
    models.loc[targets[1], "model"] = CSV_INJECTION
    models.loc[targets[2], "family"] = "two\nlines | <b>bold</b>"
    models.to_csv(run / "models.csv", index=False)
    _edit_diagnostics(run, warnings=["<img src=x onerror=alert(2)>"],
                      command="bayes-densing sample --out '<i>x</i>'")
    md_text, html_text = _report(run)

    assert "<script>" not in html_text and "<img src=x" not in html_text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_text
    doc = Parsed(html_text)
    text = "".join(doc.text)
    for literal in (SCRIPT, CSV_INJECTION, "<img src=x onerror=alert(2)>", "<i>x</i>"):
        assert literal in text                                   # shown as literal text
    assert "script" not in doc.tags and "b" not in doc.tags and "i" not in doc.tags
    assert not doc.errors and not doc.stack

    assert "<script>" not in md_text and "<b>" not in md_text
    unescaped = re.sub(r"\\(.)", r"\1", md_text)
    assert SCRIPT in unescaped and CSV_INJECTION in unescaped
    for line in md_text.splitlines():                            # no table row gained a column
        if line.startswith("| Model |") or re.match(r"\| sim|\| \\?[<=]", line):
            assert len(re.findall(r"(?<!\\)\|", line)) == 8, line


def test_missing_index_json_says_how_to_make_figures(lib_run, tmp_path):
    out = _copy(lib_run, tmp_path / "bare")
    md_text, html_text = _report(out)
    assert "This run has no figures yet" in md_text and "bayes-densing plot" in md_text
    assert "<img" not in html_text


def test_the_figures_plots_writes_are_embedded(lib_run, tmp_path):
    """Whatever figures the fit itself drew (plots.run_figures), unedited."""
    if not (lib_run.out / "figures" / "index.json").exists():
        pytest.skip("this version of run.fit draws no figures")
    out = tmp_path / "as_written"
    shutil.copytree(lib_run.out, out)
    entries = json.loads((out / "figures" / "index.json").read_text())
    drawn = [e for e in entries if "skipped" not in e]
    md_text, html_text = _report(out)
    doc = Parsed(html_text)
    assert not doc.errors and not doc.stack
    srcs = [v for tag, k, v in doc.attrs if tag == "img" and k == "src"]
    assert len(srcs) == len(drawn) > 0
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    for e in drawn:
        assert f"]({e['png']})" in md_text
    for e in entries:
        if "skipped" in e:
            assert e["name"] in md_text


def test_title_names_the_run_it_will_be_renamed_to(lib_run, tmp_path):
    """run.fit writes the report in a temporary sibling and passes the final name."""
    out = _copy(lib_run, tmp_path / ".demo.partial-k2_x9q")     # results.atomic_dir's temp name
    write_report(out, shown_as=tmp_path / "demo")
    md_text = (out / "report.md").read_text()
    assert md_text.startswith("# bayes-densing report: demo\n")
    assert md(f"bayes-densing plot {tmp_path / 'demo'}") in md_text
    title = (lib_run.out / "report.md").read_text().splitlines()[0]
    assert title == f"# bayes-densing report: {md(lib_run.out.name)}"   # what fit wrote


def test_missing_png_is_a_note_not_a_broken_image(run):
    (run / "figures" / "trend.png").unlink()
    md_text, html_text = _report(run)
    assert "Figure trend: its PNG file is missing" in md_text
    assert html_text.count("<img ") == 1


def test_markdown_escaping_and_code_fences():
    assert md("a|b\nc <x> *y*") == r"a\|b c \<x\> \*y\*"
    report = Report("t", "s", [Section("h", [Code("x = '```'")])])
    assert "````\nx = '```'\n````" in to_markdown(report)


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium")
def test_report_renders_in_headless_chromium(run, tmp_path):
    _, html_path = write_report(run)
    profile, shot = tmp_path / "profile", tmp_path / "shot.png"
    base = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={profile}"]
    url = html_path.resolve().as_uri()
    subprocess.run(base + [f"--screenshot={shot}", "--window-size=1200,3000", url],
                   capture_output=True, timeout=60)
    assert shot.exists() and shot.stat().st_size > 0
    assert shot.read_bytes().startswith(PNG_MAGIC)
    dom = subprocess.run(base + ["--dump-dom", url], capture_output=True, text=True, timeout=60)
    assert "<h2>Doubling time</h2>" in dom.stdout
    assert 'src="data:image/png;base64,' in dom.stdout
