"""Build a LOCAL analysis table: Swallow's harness scores next to the makers' reported scores.

Never shipped: most maker tables have no licence that allows redistribution (see
``recent/README.md`` of the shared data). The output goes to ``runs/local/`` (git-ignored) by
default.

Reads ``recent/maker_reported_base.csv`` (base-model tables published by the makers: Qwen3 report,
Qwen2.5 blog, OLMo 2 card with Ai2's OLMES runs, Gemma 3 card, DeepSeek-V3 README, Llama 3.2 /
Llama 4 cards, Hunyuan README) and the Swallow rows as ``tools/build_swallow_2025.py`` builds them,
and writes one long table in the package's format (the columns of ``swallow_2025.csv``) plus:

* ``source``: the task source, a short label per publication (``qwen3-report``, ``qwen2.5-blog``,
  ``olmes``, ``gemma3-card``, ``deepseek-v3``, ``llama3.2-card``, ``llama4-card``, ``hunyuan``, and
  Swallow's ``swallow`` / ``swallow-v1`` / ``swallow-v2``), so ``benchmark@source`` is one task:
  Qwen2.5-7B's HellaSwag is three tasks here (Swallow, Qwen's blog, OLMES);
* ``rerun_by``: the maker who ran the evaluation when it is not the model's own maker (Gemma 3 and
  Llama 4 rows of the Qwen3 report: ``Qwen``; other makers' rows of the OLMo 2 card: ``Ai2``).
  Blank for a maker's own models and for the Swallow leaderboard (an independent harness).

Model-level values are one per model: the Swallow dataset's for its 75 models, otherwise
``model_meta.csv``, then the package's ``open_base_llms.csv``, then the maker table's own columns
(``date_source`` says which). Series-wide token figures go in ``tokens_upper``, as in the shipped
dataset. Two Llama 3.1 ids are renamed to the ids the other tables use (the Hugging Face repos
were renamed). Rows of models lacking a size or a date are kept (blank fields): filter them before
a fit.

Usage (from the repository root)::

    python tools/build_reported_local.py [--source ../shared/data] [--out runs/local/harness_vs_reported.csv]
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_swallow_2025 as sw  # noqa: E402  (a sibling script, not a package)

REPO_ROOT = sw.REPO_ROOT
DEFAULT_SOURCE = sw.DEFAULT_SOURCE
DEFAULT_OUT = REPO_ROOT / "runs" / "local" / "harness_vs_reported.csv"
MAKER_FILE = "recent/maker_reported_base.csv"
OUTPUT_COLUMNS = sw.OUTPUT_COLUMNS + ["rerun_by"]

# raw source string (start) -> (task source label, maker who ran the evaluation)
SOURCES: tuple[tuple[str, str, str], ...] = (
    ("Qwen3 Technical Report", "qwen3-report", "Qwen"),
    ("Qwen2.5-LLM blog", "qwen2.5-blog", "Qwen"),
    ("OLMo-2-1124-7B model card", "olmes", "Ai2"),
    ("Gemma 3 model card", "gemma3-card", "Google"),
    ("deepseek-ai/DeepSeek-V3@", "deepseek-v3", "DeepSeek"),
    ("meta-llama/llama-models@a9c89c4:models/llama3_2/", "llama3.2-card", "Meta"),
    ("meta-llama/llama-models@a9c89c4:models/llama4/", "llama4-card", "Meta"),
    ("Tencent Hunyuan", "hunyuan", "Tencent"),
)
# maker -> the Hugging Face organisations of its own models
OWN_ORGS = {"Qwen": {"Qwen"}, "Ai2": {"allenai"}, "Google": {"google"},
            "DeepSeek": {"deepseek-ai"}, "Meta": {"meta-llama"}, "Tencent": {"tencent"}}
# ids renamed on Hugging Face: the maker tables' id -> the id Swallow and open_base_llms.csv use
ALIASES = {
    "meta-llama/Llama-3.1-8B": "meta-llama/Meta-Llama-3.1-8B",
    "meta-llama/Llama-3.1-70B": "meta-llama/Meta-Llama-3.1-70B",
}
# a model_meta.csv token figure that is a series figure or an upper bound, not a per-model count
SERIES_TOKENS = re.compile(r"up to|for the series|upper bound", re.IGNORECASE)
# families of models outside the Swallow dataset whose tables leave them blank: the maker's series
FAMILIES = {
    "Qwen/Qwen3-32B-Base": "Qwen3", "Qwen/Qwen3-235B-A22B-Base": "Qwen3",
    "Qwen2.5-Plus-Base (API, not open)": "Qwen2.5-API", "Qwen2.5-Turbo-Base (API, not open)": "Qwen2.5-API",
    "deepseek-ai/DeepSeek-V3-Base": "DeepSeek-V3", "deepseek-ai/DeepSeek-V2-Base": "DeepSeek-V2",
    "allenai/OLMo-2-1124-7B": "OLMo 2", "allenai/OLMo-2-1124-13B": "OLMo 2",
}
NOT_OPEN = {  # recent/README point 5
    "Qwen/Qwen3-32B-Base": "base weights not published (Qwen3 report numbers only)",
    "Qwen/Qwen3-235B-A22B-Base": "base weights not published (Qwen3 report numbers only)",
}


def source_label(raw: str) -> tuple[str, str]:
    """The (task source label, running maker) of a maker-table row's raw source string."""
    for start, label, maker in SOURCES:
        if raw.startswith(start):
            return label, maker
    raise sw.BuildError(f"unknown maker source {raw[:60]!r}; add it to SOURCES")


def model_org(model: str) -> str:
    if "/" in model:
        return model.split("/", 1)[0]
    if model.startswith("Qwen"):                      # Qwen2.5-Plus/Turbo: API models, no HF id
        return "Qwen"
    raise sw.BuildError(f"cannot tell the maker of {model!r}")


def _other_models(maker: pd.DataFrame, meta: pd.DataFrame, bundled: pd.DataFrame) -> pd.DataFrame:
    """Model-level columns of the models that are not in the Swallow dataset."""
    meta = meta.set_index("model")
    bund = bundled.drop_duplicates("model").set_index("model")
    rows = []
    for model, own in maker.groupby("model", sort=True):
        def first(col: str) -> str:
            values = sorted(set(own[col]) - {""})
            if len(values) > 1:
                notes.append(f"maker tables give {col} {' / '.join(values)}; the first is used")
            return values[0] if values else ""
        notes: list[str] = []
        params = active = tokens = upper = float("nan")
        date, date_source = "", ""
        if model in meta.index:
            m = meta.loc[model]
            params, active = sw._num(m["params_b"]), sw._num(m["params_active_b"])
            if m["tokens_t"] != "":
                if SERIES_TOKENS.search(m["meta_source"]) or "same as Qwen/Qwen2.5" in m["meta_source"] \
                        or m["meta_source"].startswith("same as Qwen3"):
                    upper = float(m["tokens_t"])
                else:
                    tokens = float(m["tokens_t"])
            if m["release_date"]:
                date, date_source = m["release_date"], "model_meta"
        if model in bund.index:
            b = bund.loc[model]
            if params != params:
                params, active = float(b["params"]), float(b["params_active"])
            if tokens != tokens and upper != upper and b["tokens"] != "":
                tokens = float(b["tokens"])
            if not date:
                date, date_source = b["release_date"], "open_base_llms"
        if params != params and first("params_b"):
            params = float(first("params_b"))
            active = float(first("params_active_b")) if first("params_active_b") else params
        if not date and first("release_date"):
            date, date_source = first("release_date"), "maker_table"
        if active != active:
            active = params
        family = (bund.loc[model, "family"] if model in bund.index
                  else FAMILIES.get(model) or first("family"))
        if "(API, not open)" in model:
            notes.append("closed API model, not open weights")
        if model in NOT_OPEN:
            notes.append(NOT_OPEN[model])
        rows.append({"model": model, "family": family, "params": params, "params_active": active,
                     "tokens": tokens, "tokens_upper": upper, "release_date": date,
                     "date_source": date_source,
                     "role": "reference" if model in sw.REFERENCE_MODELS else "target",
                     "continued_pretraining": False, "note": "; ".join(dict.fromkeys(notes))})
    return pd.DataFrame(rows).set_index("model")


def build(source_dir: Path, bundled_path: Path = sw.BUNDLED) -> pd.DataFrame:
    """Return the local table: the Swallow dataset's rows and the maker tables' rows."""
    swallow = sw.build(source_dir, bundled_path)
    swallow["rerun_by"] = ""
    maker = sw._read(source_dir / MAKER_FILE, sw.SOURCE_COLUMNS)
    meta = sw._read(source_dir / sw.META_FILE, sw.META_COLUMNS)
    bundled = pd.read_csv(bundled_path, dtype=str, keep_default_na=False)

    maker["model"] = maker["model"].replace(ALIASES)
    labels = maker["source"].map(source_label)
    maker["label"], maker["runner"] = labels.str[0], labels.str[1]
    if maker.duplicated(["model", "benchmark", "label"]).any():
        dup = maker[maker.duplicated(["model", "benchmark", "label"], keep=False)].iloc[0]
        raise sw.BuildError(f"{dup['model']} has two {dup['benchmark']} scores from {dup['label']}")

    known = swallow.drop_duplicates("model").set_index("model")[sw.MODEL_LEVEL]
    others = _other_models(maker[~maker["model"].isin(known.index)], meta, bundled)
    level = pd.concat([known, others])

    out = pd.DataFrame({
        "model": maker["model"], "benchmark": maker["benchmark"], "source": maker["label"],
        "score": maker["score"].astype(float), "shots": maker["shots"],
        "provenance": maker["source"],
        "rerun_by": [runner if model_org(m) not in OWN_ORGS[runner] else ""
                     for m, runner in zip(maker["model"], maker["runner"])],
    })
    for col in sw.MODEL_LEVEL:
        out[col] = out["model"].map(level[col])
    out = pd.concat([swallow, out[OUTPUT_COLUMNS]], ignore_index=True)
    if not out["score"].between(0.0, 1.0).all():
        raise sw.BuildError("score outside [0, 1]")
    out = out.sort_values(["release_date", "model", "benchmark", "source"], kind="mergesort")
    return out[OUTPUT_COLUMNS].reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                        help="folder holding recent/ (default: ../shared/data)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output CSV (default: runs/local/harness_vs_reported.csv, git-ignored)")
    args = parser.parse_args(argv)
    try:
        df = build(args.source)
    except sw.BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8", newline="") as fh:
        fh.write(sw.to_csv_text(df))
    per_source = df.groupby("source")["model"].nunique()
    print(f"wrote {args.out}: {df['model'].nunique()} models, {len(df)} rows, "
          f"{df['benchmark'].nunique()} benchmarks, {len(per_source)} sources "
          f"({', '.join(f'{s} {n}' for s, n in per_source.items())} models), "
          f"{(df['rerun_by'] != '').sum()} rows re-run by another maker")
    return 0


if __name__ == "__main__":
    sys.exit(main())
