"""Build the package's curated copy of the open base-LLM benchmark table.

Reads the shared long-format table ``open_base_llms.csv`` (one row per
model x benchmark: scores and sizes from the ObsScaling evaluation tables of
Ruan, Maddison & Hashimoto 2024, release dates from model cards) and writes
``bayes_densing/datasets/open_base_llms.csv`` with:

* the known errors of the source tables corrected (parameter counts, token
  counts, mixture-of-experts total vs. active sizes) -- every correction is
  stated in the ``note`` column of that model's rows;
* ``params`` (total, billions) and ``params_active`` (active, billions; equal
  to ``params`` for dense models) kept side by side;
* three boolean flags: ``is_base`` (false for instruction-tuned models),
  ``specialist`` (code/math specialist models) and ``in_densing_paper``
  (models of Figure 1 of the Densing-law paper, arXiv 2412.04315);
* no row dropped: problems are flagged, never deleted.

Output is sorted by (release_date, model, benchmark), floats are written with
6 significant digits (the precision of the source table), booleans as
``true``/``false``, missing values as empty fields.  The script is
deterministic: running it twice gives byte-identical files.

Usage (from the repository root)::

    python tools/build_open_base_llms.py [--source ../shared/data]
                                         [--out bayes_densing/datasets/open_base_llms.csv]

See ``bayes_densing/datasets/README.md`` for the evidence behind each
correction and flag.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO_ROOT.parent / "shared" / "data"
DEFAULT_OUT = REPO_ROOT / "bayes_densing" / "datasets" / "open_base_llms.csv"

SOURCE_FILE = "open_base_llms.csv"
SOURCE_COLUMNS = [
    "model", "family", "params_b", "tokens_t", "release_date",
    "date_precision", "benchmark", "suite", "score",
]
OUTPUT_COLUMNS = [
    "model", "family", "params", "params_active", "tokens", "release_date",
    "date_precision", "benchmark", "suite", "score", "is_base", "specialist",
    "in_densing_paper", "note",
]
EXPECTED_MODELS = 148
EXPECTED_ROWS = 1576

# ---------------------------------------------------------------------------
# Corrections.  Each entry: model -> (field, value in source, corrected value,
# note).  The source value is checked before it is replaced, so that a change
# in the shared table makes the build fail loudly instead of silently
# overwriting a value nobody has looked at.
# ---------------------------------------------------------------------------
CORRECTIONS: dict[str, list[tuple[str, float, float, str]]] = {
    "openlm-research/open_llama_7b_v2": [
        ("params_b", 13.0, 7.0,
         "params corrected 13 -> 7 (source table error; 7B model)"),
    ],
    "cerebras/btlm-3b-8k-base": [
        ("tokens_t", 627.0, 0.627,
         "tokens corrected 627 -> 0.627 (source gave billions: 627B tokens)"),
    ],
    "openlm-research/open_llama_13b": [
        ("tokens_t", 0.6, 1.0,
         "tokens corrected 0.6 -> 1 (0.6T was the 13B preview in the separate "
         "repo open_llama_13b_600bt; this repo is the final 1T-token release)"),
    ],
    "togethercomputer/RedPajama-INCITE-Base-7B-v0.1": [
        ("tokens_t", 1.0, 0.8,
         "tokens corrected 1 -> 0.8 (v0.1 is the preview released 80% "
         "through a 1T-token run; the 1T model is RedPajama-INCITE-7B-Base)"),
    ],
    "stabilityai/stablelm-base-alpha-3b": [
        ("tokens_t", 1.5, 0.8,
         "tokens corrected 1.5 -> 0.8 (1.5T is the dataset size; StableLM "
         "README lists 800B training tokens)"),
    ],
    "stabilityai/stablelm-base-alpha-7b": [
        ("tokens_t", 1.5, 0.8,
         "tokens corrected 1.5 -> 0.8 (1.5T is the dataset size; StableLM "
         "README lists 800B training tokens)"),
    ],
    "google/gemma-2b": [
        ("tokens_t", 6.0, 3.0,
         "tokens corrected 6 -> 3 (Gemma report: 2B trained on 3T tokens and "
         "7B on 6T)"),
    ],
    "TinyLlama/TinyLlama_v1.1": [
        ("tokens_t", 3.0, 2.0,
         "tokens corrected 3 -> 2 (v1.1 model card: 2T tokens; 3T was "
         "TinyLlama v1.0)"),
    ],
}

# Mixture-of-experts models: model -> (params in source, total, active, note).
MOE: dict[str, tuple[float, float, float, str]] = {
    "mistralai/Mixtral-8x7B-v0.1": (
        45.0, 46.7, 12.9,
        "MoE: params corrected 45 -> 46.7 total; 12.9 active"),
    "mistralai/Mixtral-8x22B-v0.1": (
        39.0, 141.0, 39.0,
        "MoE: source 39 was the active size; params 141 total / 39 active"),
    "Qwen/Qwen2-57B-A14B": (
        24.0, 57.0, 14.0,
        "MoE: params corrected 24 -> 57 total; 14 active"),
    "deepseek-ai/DeepSeek-V2": (
        21.0, 236.0, 21.0,
        "MoE: source 21 was the active size; params 236 total / 21 active"),
    "deepseek-ai/DeepSeek-Coder-V2-Base": (
        21.0, 236.0, 21.0,
        "MoE: source 21 was the active size; params 236 total / 21 active"),
    "ai21labs/Jamba-v0.1": (
        12.0, 52.0, 12.0,
        "MoE: source 12 was the active size; params 52 total / 12 active"),
    "deepseek-ai/deepseek-moe-16b-base": (
        16.0, 16.4, 2.8,
        "MoE: params 16 -> 16.4 total; 2.8 active"),
}

# ---------------------------------------------------------------------------
# Flags.
# ---------------------------------------------------------------------------
NOT_BASE: dict[str, str] = {
    "RWKV/rwkv-raven-14b":
        "instruction-tuned (Raven = RWKV-4 fine-tuned on instructions); "
        "is_base false",
}

# Families whose every member is a code specialist.
SPECIALIST_FAMILIES = {
    "StarCoder", "StarCoder2", "CodeLlama", "DeepSeek-Coder", "DeepSeek-Coder-V2",
}
# CodeGen-NL (the only CodeGen variant in the table) was trained on the Pile,
# i.e. on general text; CodeGen-Multi/-Mono are the code-trained variants.
CODEGEN_NL_NOTE = ("CodeGen-NL: trained on the Pile (general text) unlike the "
                   "code-trained Multi/Mono variants; specialist false")

# Models of Figure 1 of the Densing paper (arXiv 2412.04315) present in the
# table: 21 of the paper's 29 (TinyLlama as its v1.1).
DENSING_PAPER_MODELS = (
    "huggyllama/llama-7b",
    "huggyllama/llama-13b",
    "huggyllama/llama-65b",
    "meta-llama/Llama-2-7b-hf",
    "meta-llama/Llama-2-13b-hf",
    "meta-llama/Llama-2-70b-hf",
    "meta-llama/Meta-Llama-3-8B",
    "meta-llama/Meta-Llama-3-70B",
    "meta-llama/Meta-Llama-3.1-8B",
    "meta-llama/Meta-Llama-3.1-405B-FP8",
    "mistralai/Mistral-7B-v0.1",
    "tiiuae/falcon-40b",
    "mosaicml/mpt-30b",
    "microsoft/phi-1_5",
    "microsoft/phi-2",
    "google/gemma-2b",
    "google/gemma-7b",
    "google/gemma-2-2b",
    "google/gemma-2-9b",
    "google/gemma-2-27b",
    "TinyLlama/TinyLlama_v1.1",
)

# Remarks that are not corrections.
REMARKS: dict[str, str] = {
    "meta-llama/Meta-Llama-3.1-405B-FP8":
        "FP8-quantised release of the Llama-3.1-405B base model",
    "TinyLlama/TinyLlama_v1.1":
        "stands in for the Densing paper's TinyLlama-1.1B",
}


def _close(a: float, b: float) -> bool:
    return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(b)))


def _add_note(notes: dict[str, list[str]], model: str, text: str) -> None:
    notes.setdefault(model, []).append(text)


def build(source_dir: Path) -> pd.DataFrame:
    """Return the curated table built from ``source_dir / open_base_llms.csv``."""
    src = pd.read_csv(source_dir / SOURCE_FILE, dtype={"release_date": str})
    if list(src.columns) != SOURCE_COLUMNS:
        raise ValueError(f"unexpected source columns: {list(src.columns)}")
    if src.duplicated(["model", "benchmark"]).any():
        raise ValueError("duplicate (model, benchmark) rows in source")
    # Per-model attributes must be constant across a model's rows.
    per_model = ["family", "params_b", "tokens_t", "release_date", "date_precision"]
    varying = src.groupby("model")[per_model].nunique(dropna=False).gt(1).any(axis=1)
    if varying.any():
        raise ValueError(f"per-model fields vary within: {list(varying[varying].index)}")

    df = src.rename(columns={"params_b": "params", "tokens_t": "tokens"}).copy()
    df["params"] = df["params"].astype(float)
    df["tokens"] = df["tokens"].astype(float)
    df["params_active"] = df["params"]
    models = set(df["model"])
    notes: dict[str, list[str]] = {}

    for model, fixes in CORRECTIONS.items():
        if model not in models:
            raise ValueError(f"correction for absent model {model}")
        rows = df["model"] == model
        for field, old, new, note in fixes:
            col = {"params_b": "params", "tokens_t": "tokens"}[field]
            current = df.loc[rows, col].iloc[0]
            if not _close(current, old):
                raise ValueError(f"{model}: {col} is {current}, expected {old}")
            df.loc[rows, col] = new
            if col == "params":
                df.loc[rows, "params_active"] = new
            _add_note(notes, model, note)

    for model, (old, total, active, note) in MOE.items():
        if model not in models:
            raise ValueError(f"MoE entry for absent model {model}")
        rows = df["model"] == model
        current = df.loc[rows, "params"].iloc[0]
        if not _close(current, old):
            raise ValueError(f"{model}: params is {current}, expected {old}")
        df.loc[rows, "params"] = total
        df.loc[rows, "params_active"] = active
        _add_note(notes, model, note)

    df["is_base"] = ~df["model"].isin(NOT_BASE.keys())
    for model, note in NOT_BASE.items():
        if model not in models:
            raise ValueError(f"is_base entry for absent model {model}")
        _add_note(notes, model, note)

    df["specialist"] = df["family"].isin(SPECIALIST_FAMILIES)
    for model in sorted(m for m in models if m.lower().startswith("salesforce/codegen-")):
        if not model.lower().endswith("-nl"):
            raise ValueError(f"{model}: only CodeGen-NL is expected; decide its flag")
        _add_note(notes, model, CODEGEN_NL_NOTE)

    missing = [m for m in DENSING_PAPER_MODELS if m not in models]
    if missing:
        raise ValueError(f"Densing-paper models absent from source: {missing}")
    df["in_densing_paper"] = df["model"].isin(DENSING_PAPER_MODELS)

    for model, note in REMARKS.items():
        if model not in models:
            raise ValueError(f"remark for absent model {model}")
        _add_note(notes, model, note)

    df["note"] = df["model"].map(lambda m: "; ".join(notes.get(m, [])))

    # Sanity checks on the result.
    if df["model"].nunique() != EXPECTED_MODELS or len(df) != EXPECTED_ROWS:
        raise ValueError(f"expected {EXPECTED_MODELS} models / {EXPECTED_ROWS} rows, "
                         f"got {df['model'].nunique()} / {len(df)}")
    if not df["score"].between(0.0, 1.0).all():
        raise ValueError("score outside [0, 1]")
    if (df["params_active"] > df["params"]).any():
        raise ValueError("params_active > params")
    pd.to_datetime(df["release_date"], format="%Y-%m-%d")  # raises if malformed

    df = df.sort_values(["release_date", "model", "benchmark"], kind="mergesort")
    return df[OUTPUT_COLUMNS].reset_index(drop=True)


def to_csv_text(df: pd.DataFrame) -> str:
    """Serialise deterministically: 6 significant digits, true/false, '' for NA."""
    out = df.copy()
    for col in ("is_base", "specialist", "in_densing_paper"):
        out[col] = out[col].map({True: "true", False: "false"})
    for col in ("params", "params_active", "tokens", "score"):
        out[col] = out[col].map(lambda x: "" if pd.isna(x) else f"{x:.6g}")
    return out.to_csv(index=False, lineterminator="\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                        help="folder holding open_base_llms.csv (default: ../shared/data)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output CSV (default: bayes_densing/datasets/open_base_llms.csv)")
    args = parser.parse_args(argv)

    df = build(args.source)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8", newline="") as fh:
        fh.write(to_csv_text(df))
    dates = df["release_date"]
    print(f"wrote {args.out}: {df['model'].nunique()} models, {len(df)} rows, "
          f"{df['benchmark'].nunique()} benchmarks, {dates.min()} .. {dates.max()}, "
          f"{int((df['note'] != '').groupby(df['model']).any().sum())} models with notes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
