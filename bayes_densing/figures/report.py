"""The run report: one Markdown file and one self-contained HTML file from a run directory.

    from bayes_densing.figures.report import write_report
    md_path, html_path = write_report("runs/demo")   # runs/demo/report.md, runs/demo/report.html

The content is built once (:func:`build_report`) as a list of sections made of plain-text blocks
(paragraphs, lists, tables, code, figures) and rendered twice. Block text is never markup: every
string is escaped on rendering (``html.escape`` for HTML; backslash escapes and no newlines for
Markdown), so model names, notices or a command line cannot inject markup. The HTML embeds its
figures as ``data:`` URIs and its style inline, and refers to nothing outside the file.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from collections import namedtuple
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from bayes_densing import __version__, results
from bayes_densing.model import laws
from bayes_densing.results import rundir
from bayes_densing.analyses.claim import _prob, claim
from bayes_densing.inference.sample import BFMI_MIN, ESS_MIN, RHAT_MAX
from bayes_densing.inference.sample import problems as check_problems, rhat_text

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TOP, BOTTOM = 10, 5


# The content: plain text only (escaped when rendered), never markup.
Para = namedtuple("Para", "text style", defaults=[""])          # style "strong": bold
Items = namedtuple("Items", "items style", defaults=[""])       # style "warn": each a warning
Table = namedtuple("Table", "header rows")                      # lists of cell strings
Code = namedtuple("Code", "text")                               # verbatim (a code block)
Image = namedtuple("Image", "title caption rel png")  # rel: link for Markdown; png: bytes for HTML
Section = namedtuple("Section", "heading blocks style", defaults=[""])  # style "warn": a box
Report = namedtuple("Report", "title subtitle sections")


def num(x, spec: str = ".2f") -> str:
    """``x`` formatted, "n/a" when missing or NaN, "∞" when infinite."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if math.isnan(x) else ("∞" if math.isinf(x) else format(x, spec))


def text(x) -> str:
    """A data value as one line of text ("" for missing)."""
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else " ".join(str(x).split())


# --- content -----------------------------------------------------------------------------------

def _diagnostics(d: dict) -> Section:
    recorded = d.get("problems", ["diagnostics.json records no verdict"]) or []
    # the numbers are checked again, so a run judged by other (older) thresholds, or an edited
    # diagnostics.json, cannot show as passing
    problems = [text(p) for p in dict.fromkeys([*recorded, *check_problems(d)])]
    g = d.get
    numbers = (f"Divergences {g('divergences', 'n/a')}; max R-hat {rhat_text(d)} "
               f"({text(g('max_rhat_var'))}); min ESS bulk {num(g('min_ess_bulk'), '.0f')}, tail "
               f"{num(g('min_ess_tail'), '.0f')}; min E-BFMI {num(g('min_bfmi'))}; "
               f"{g('chains', '?')} chains × {g('draws', '?')} draws; sampler "
               f"{text(g('sampler'))} on {text(g('device'))}; "
               f"wall time {num(g('wall_s'), '.1f')} s.")
    notes = [Para(text(n)) for n in g("notes", [])]
    if not problems:
        rhat = (f"R-hat ≤ {RHAT_MAX}, " if g("chains") != 1 else "")
        ok = (f"Diagnostics: OK — the sampler's checks passed (no divergences, "
              f"{rhat}ESS ≥ {ESS_MIN}, E-BFMI ≥ {BFMI_MIN}).")
        return Section("Diagnostics", [Para(ok, "strong"), Para(numbers), *notes])
    return Section("⚠ Diagnostics: FAILED", [
        Para("Diagnostics: FAILED — the sampler's checks did not pass, so the numbers in this "
             "report may be wrong. Problems:", "strong"),
        Items(problems, "warn"), Para(numbers), *notes,
        Para("Sample longer (more draws and tuning steps; see docs/interpreting.md) before "
             "relying on these results.")], "warn")


def _data(run: results.Run) -> Section:
    d, m, cfg = run.diagnostics, run.models, run.config
    tg, ref = m[m.role == "target"], m[m.role == "reference"]
    ref_fams = ", ".join(sorted({text(f) for f in ref.family})) or "none"
    benchmarks = list(cfg.data.benchmarks)
    items = [f"Target models: {len(tg)} (released {text(tg.release_date.min())} … "
             f"{text(tg.release_date.max())})",
             f"Reference models: {len(ref)} (families: {ref_fams})",
             "Reference family setting: " + (text(cfg.data.reference)
                                              or "none (the role column or the dataset default)"),
             f"Benchmarks: {len(benchmarks)} ({', '.join(text(b) for b in benchmarks)})",
             f"Trend form: {cfg.model.trend}"]
    blocks = [Para(text(d.get("data", "no data description recorded"))), Items(items)]
    if d.get("notices"):
        blocks += [Para("Notices:"), Items([text(n) for n in d["notices"]])]
    if d.get("warnings"):
        blocks += [Para("Data warnings:", "strong"),
                   Items([text(w) for w in d["warnings"]], "warn")]
    return Section("Data", blocks)


def _doubling(run: results.Run) -> Section:
    c, dpm = claim(run), laws.DAYS_PER_MONTH
    rows = [["Doubling time, median", f"{num(c.median_months)} months "
             f"({num(c.median_months * dpm, '.0f')} days)"]]
    for prob, (lo, hi) in c.hdi_months.items():
        rows.append([f"{float(prob):.0%} HDI", f"{num(lo)}–{num(hi)} months "
                     f"({num(lo * dpm, '.0f')}–{num(hi * dpm, '.0f')} days)"])
    rows += [[f"P(T ≤ {m} months)", _prob(p).removeprefix("= ")] for m, p in c.p_leq.items()]
    if c.p_no_growth:
        rows.append(["P(no growth, A ≤ 0)", num(c.p_no_growth, ".3f")])
    a, g = c.A_per_day, c.growth_per_year
    rows += [["A per day (paper: 0.0073)", f"{num(a['median'], '.4f')} (90% HDI "
              f"{num(a['low'], '.4f')}–{num(a['high'], '.4f')})"],
             ["Growth per year", f"×{num(g['median'], '.1f')} (90% HDI ×{num(g['low'], '.1f')}–"
              f"×{num(g['high'], '.1f')})"]]
    if c.ratio:
        r = c.ratio
        rows += [[f"Slope after / before {r['change_date']}", f"{num(r['median'])} (90% HDI "
                  f"{num(r['low'])}–{num(r['high'])})"],
                 [f"P(after ≥ {r['threshold']:g} × before)", num(r["p_at_least"], ".3f")],
                 ["P(slower after)", num(r["p_slower_after"], ".3f")]]
    estimand = results.ESTIMAND[run.diagnostics.get("estimand", "joint")]
    blocks = [Para(f"Doubling time T = ln 2 / A of the density ({c.trend} trend, "
                   f"{c.n_draws} posterior draws). Estimand: {estimand}."),
              Table(["Quantity", "Value"], rows)]
    cl = run.diagnostics.get("classic")
    if cl and "error" not in cl and None not in cl.values():
        blocks.append(Para(f"The paper's point method on the same data: doubling "
                           f"{num(cl['doubling_months'])} months, A = "
                           f"{num(cl['A_per_day'], '.4f')} per day, R² {num(cl['r2'])}, "
                           f"{cl['n_envelope']} envelope models."))
    elif cl:
        blocks.append(Para("The paper's point method could not run on these data: "
                           + text(cl.get("error", "no envelope slope"))))
    if c.notes:
        blocks.append(Items([text(n) for n in c.notes]))
    return Section("Doubling time", blocks)


def _model_rows(df: pd.DataFrame) -> list[list[str]]:
    return [[text(m.model), text(m.family), text(m.release_date), num(m.params, ".3g"),
             num(m.density, ".3g"), f"{num(m.density_low, '.3g')}–{num(m.density_high, '.3g')}",
             num(m.p_on_frontier)] for m in df.itertuples()]


def _models(models: pd.DataFrame) -> Section:
    tg = models[models.role == "target"].sort_values("density", ascending=False)
    header = ["Model", "Family", "Released", "Params (B)", "Density", "90% HDI", "P(on frontier)"]
    blocks = [Para("Density = effective size / actual size (posterior median and 90% HDI); "
                   "P(on frontier): share of draws in which the model is on the running maximum.")]
    blocks += [Para(line.strip()[0].upper() + line.strip()[1:])
               for line in results.extrapolation_lines(results.extrapolation_summary(models))]
    blocks += [Para(f"Densest target models (top {min(TOP, len(tg))} of {len(tg)}):", "strong"),
               Table(header, _model_rows(tg.head(TOP)))]
    rest = tg.iloc[TOP:]
    if len(rest):
        low = rest.tail(BOTTOM).iloc[::-1]
        blocks += [Para(f"Least dense target models ({len(low)}, least dense first):", "strong"),
                   Table(header, _model_rows(low))]
    return Section("Densest and least dense models", blocks)


def _reference_fit(run: results.Run) -> Section:
    fit = run.diagnostics.get("reference_fit") or {}
    if not fit:
        return Section("How well the reference curves fit the reference models",
                       [Para("This run records no reference fit (written before it was checked, "
                             "or without reference scores).")])
    rows = [[name, str(b["n"]), f"{b['mean_pit']:.2f}", f"{b['z']:+.1f}",
             {"above": "above their curve", "below": "below their curve"}.get(b["verdict"], "ok"),
             str(b["outside_90"]),
             f"{b['worst']['model']} ({b['worst']['score']:.2f}, PIT {b['worst']['pit']:.2f})"]
            for name, b in fit.items()]
    return Section("How well the reference curves fit the reference models", [
        Para(results.reference_fit_lines(fit)[0]),
        Para("Per benchmark, the LOO-PIT of the reference scores (each score's place in its "
             "predictive distribution with that score left out): a mean near 0.5 when the "
             "curve passes through the reference models; z = (mean − 0.5)/√(1/12n), flagged "
             "beyond ±2. Effective sizes are read off these curves, so a benchmark whose "
             "references sit above their curve pushes the targets' sizes read on it upward."),
        Table(["Benchmark", "Scores", "Mean PIT", "z", "References", "Outside 90%",
               "Worst placed"], rows)])


def _figures(run_dir: Path, shown: Path) -> Section:
    index = run_dir / "figures" / "index.json"
    hint = f"Make them with: bayes-densing plot {shown}"
    if not index.exists():
        return Section("Figures", [Para("This run has no figures yet. " + hint)])
    try:
        entries = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return Section("Figures", [Para(f"figures/index.json cannot be read ({exc}). " + hint)])
    blocks, skipped, root = [], [], run_dir.resolve()
    entries = [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
    for e in entries:
        name = text(e.get("name", "?"))
        if "skipped" in e:
            skipped.append(f"{name} ({text(e['skipped'])})")
            continue
        path = (run_dir / str(e.get("png", ""))).resolve()
        png = path.read_bytes() if path.is_file() and path.is_relative_to(root) else b""
        if not png.startswith(PNG_MAGIC):
            blocks.append(Para(f"Figure {name}: its PNG file is missing or not a PNG."))
            continue
        blocks.append(Image(text(e.get("title", name)), text(e.get("caption", "")),
                            path.relative_to(root).as_posix(), png))
    if skipped:
        blocks.append(Para("Not drawn for this run: " + "; ".join(skipped) + "."))
    return Section("Figures", blocks or [Para("figures/index.json lists no figures. " + hint)])


def _reproduce(run: results.Run) -> Section:
    d = run.diagnostics
    blocks = ([Para("Command:"), Code(text(d["command"]))] if d.get("command") else
              [Para("Command: not recorded (this run predates command recording).")])
    blocks += [Items([f"Input: {text(d.get('input', 'not recorded'))}",
                      f"Input sha256: {text(d.get('input_sha256', 'not recorded'))}",
                      f"Seed: {text(d.get('seed', 'not recorded'))}"]),
               Table(["Package", "Version"],
                     [[text(k), text(v)] for k, v in d.get("versions", {}).items()]),
               Para("Configuration (config.toml):"), Code(run.config.to_toml())]
    return Section("Reproduce", blocks)


def build_report(run_dir: str | Path, shown_as: str | Path | None = None) -> Report:
    """The report's content, format-free: title, subtitle and sections in display order.
    ``shown_as``: the run directory's name for the reader, when the report is written before
    the directory reaches it (``run.fit`` writes into a temporary sibling, then renames)."""
    run_dir = Path(run_dir)
    run, shown = results.load_run(run_dir), Path(shown_as or run_dir)
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return Report(f"bayes-densing report: {shown.resolve().name}",
                  f"Generated {stamp} by bayes-densing {__version__}.",
                  [_diagnostics(run.diagnostics), _data(run), _doubling(run),
                   _models(run.models), _reference_fit(run), _figures(run_dir, shown), _reproduce(run)])


# --- rendering ---------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|&#~!])")


def md(s: str) -> str:
    """One line of literal text in Markdown: markup characters backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", text(s))


def _md_block(b) -> str:
    if isinstance(b, Para):
        return f"**{md(b.text)}**" if b.style else md(b.text)
    if isinstance(b, Items):
        return "\n".join(("- **Warning:** " if b.style else "- ") + md(i) for i in b.items)
    if isinstance(b, Table):
        row = lambda cells: "| " + " | ".join(md(c) for c in cells) + " |"  # noqa: E731
        return "\n".join([row(b.header), "|" + "---|" * len(b.header)] + [row(r) for r in b.rows])
    if isinstance(b, Code):
        fence = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", b.text)), default=0))
        return f"{fence}\n{b.text.rstrip()}\n{fence}"
    return f"### {md(b.title)}\n\n![{md(b.title)}]({quote(b.rel)})\n\n{md(b.caption)}"


def to_markdown(report: Report) -> str:
    out = [f"# {md(report.title)}", md(report.subtitle)]
    for s in report.sections:
        body = [f"## {md(s.heading)}"] + [_md_block(b) for b in s.blocks]
        if s.style:  # a warning box: the whole section as a block quote
            body = ["\n".join(f"> {line}".rstrip() for line in part.split("\n")) for part in body]
        out += body if not s.style else ["\n>\n".join(body)]
    return "\n\n".join(out) + "\n"


def _html_block(b) -> str:
    e = lambda s: html.escape(str(s), quote=True)  # noqa: E731
    if isinstance(b, Para):
        return f"<p><strong>{e(b.text)}</strong></p>" if b.style else f"<p>{e(b.text)}</p>"
    if isinstance(b, Items):
        pre = "<strong>Warning:</strong> " if b.style else ""
        return ('<ul class="warn">' if b.style else "<ul>") + "".join(
            f"<li>{pre}{e(i)}</li>" for i in b.items) + "</ul>"
    if isinstance(b, Table):
        head = "".join(f"<th>{e(h)}</th>" for h in b.header)
        body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in b.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if isinstance(b, Code):
        return f"<pre><code>{e(b.text.rstrip())}</code></pre>"
    src = "data:image/png;base64," + base64.b64encode(b.png).decode("ascii")
    return (f'<figure><h3>{e(b.title)}</h3><img src="{src}" alt="{e(b.title)}">'
            f"<figcaption>{e(b.caption)}</figcaption></figure>")


STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
line-height:1.45;color:#222}table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid
#ccc;padding:.25rem .6rem;text-align:left;font-variant-numeric:tabular-nums}th{background:#f2f2f2}
img{max-width:100%;height:auto}pre{background:#f6f6f6;padding:.75rem;overflow-x:auto}
section.warn{border:3px solid #c00;background:#fff0f0;padding:.5rem 1rem;margin:1rem 0}
ul.warn li{color:#900}figure{margin:1.5rem 0}figcaption{color:#555}"""
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def to_html(report: Report) -> str:
    e = html.escape
    parts = [('<section class="warn">' if s.style else "<section>") + f"<h2>{e(s.heading)}</h2>"
             + "\n".join(_html_block(b) for b in s.blocks) + "</section>" for s in report.sections]
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f"<title>{e(report.title)}</title><style>{STYLE}</style></head>\n<body>"
            f"<h1>{e(report.title)}</h1><p>{e(report.subtitle)}</p>\n"
            + "\n".join(parts) + "\n</body></html>\n")


def write_report(run_dir: str | Path, shown_as: str | Path | None = None) -> tuple[Path, Path]:
    """Write ``run_dir/report.md`` and ``run_dir/report.html`` (self-contained); return both.
    ``shown_as``: see :func:`build_report`."""
    run_dir = Path(run_dir)
    report = build_report(run_dir, shown_as)
    md_path, html_path = run_dir / "report.md", run_dir / "report.html"
    rundir.write_atomic(md_path, to_markdown(report))
    rundir.write_atomic(html_path, to_html(report))
    rundir.record_derived(run_dir, [md_path.name, html_path.name])
    return md_path, html_path
