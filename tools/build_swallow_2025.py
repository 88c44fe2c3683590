"""Build the package's single-harness dataset of 2023-2025 base LLMs (Swallow LLM Leaderboard).

Reads ``recent/swallow_en_pre.csv`` (English tasks of the pre-trained models of the Swallow LLM
Leaderboard, github swallow-llm/leaderboard ``_data/model.yml``, CC-BY 4.0: 75 models x 10
benchmarks, from two releases of the board), ``recent/model_meta.csv`` (sizes, token counts and
dates of post-2024 models, each with its citation) and the package's own
``bayes_densing/datasets/open_base_llms.csv`` (release dates and sizes of older models), and writes
``bayes_densing/datasets/swallow_2025.csv`` in the package's long format with:

* ``source`` the task source: ``swallow`` for every benchmark but BBH, whose rows are
  ``swallow-v1`` (board tag v1.0) or ``swallow-v2`` (commit ed3805c): the board's BBH pipeline
  changed between the two releases, its other nine tasks did not (identical scores for the 47
  models present in both);
* ``role`` = ``reference`` for exactly the seven Qwen2.5 base models, ``target`` otherwise;
* families that group a model with its maker's own series only (Swallow files continued-pretraining
  models under their parent's family) and the blank families of the v1.0 rows filled in;
* ``continued_pretraining`` true for models built on another base model, their parent in ``note``;
* ``tokens`` only for per-model figures; series upper bounds go in ``tokens_upper``;
* sizes and dates from the more precise source, with ``date_source`` naming where each date is from;
* one known-bad score left out (Llama-4-Scout's BBH), stated in that model's ``note``.

Every correction checks the value it replaces, so that a change in the inputs stops the build
instead of overwriting a value nobody has looked at. Rows are sorted by (release_date, model,
benchmark, source); floats have 6 significant digits, booleans are ``true``/``false`` and missing
values empty fields. Running it twice gives byte-identical files.

Usage (from the repository root)::

    python tools/build_swallow_2025.py [--source ../shared/data]
                                       [--out bayes_densing/datasets/swallow_2025.csv]

The evidence for each decision is in ``bayes_densing/datasets/README-swallow_2025.md``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO_ROOT.parent / "shared" / "data"
DEFAULT_OUT = REPO_ROOT / "bayes_densing" / "datasets" / "swallow_2025.csv"
BUNDLED = REPO_ROOT / "bayes_densing" / "datasets" / "open_base_llms.csv"

SCORES_FILE = "recent/swallow_en_pre.csv"
META_FILE = "recent/model_meta.csv"
SOURCE_COLUMNS = [
    "model", "family", "params_b", "params_active_b", "tokens_t", "release_date",
    "benchmark", "score", "shots", "source",
]
META_COLUMNS = ["model", "params_b", "params_active_b", "tokens_t", "release_date", "meta_source"]
OUTPUT_COLUMNS = [
    "model", "family", "params", "params_active", "tokens", "tokens_upper", "release_date",
    "date_source", "role", "benchmark", "source", "score", "shots", "continued_pretraining",
    "note", "provenance",
]
MODEL_LEVEL = [
    "family", "params", "params_active", "tokens", "tokens_upper", "release_date",
    "date_source", "role", "continued_pretraining", "note",
]
FLOATS = ("params", "params_active", "tokens", "tokens_upper", "score")
EXPECTED_MODELS = 75
EXPECTED_ROWS = 749           # 750 source rows less the one dropped score
BENCHMARKS = ("bbh", "gsm8k", "hellaswag", "humaneval", "math", "mmlu", "openbookqa", "squad2",
              "triviaqa", "xwinograd")

# The two releases of the board: a marker in the raw source string -> (BBH source label, models).
RELEASES = {
    "swallow-llm/leaderboard@v1.0:": ("swallow-v1", 25),
    "swallow-llm/leaderboard@ed3805c:": ("swallow-v2", 50),
}
TASK_SOURCE = "swallow"        # every benchmark but BBH: one pipeline across both releases
SPLIT_BENCHMARK = "bbh"        # the one benchmark whose pipeline changed between the releases

REFERENCE_FAMILY = "Qwen2.5"
REFERENCE_MODELS = tuple(f"Qwen/Qwen2.5-{s}B" for s in ("0.5", "1.5", "3", "7", "14", "32", "72"))

# ---------------------------------------------------------------------------
# Families.  model -> (family in the source, family written).  The v1.0 rows have no family;
# they get the maker's series.  Three continued-pretraining series that Swallow files under their
# parent's family get a family of their own (a reference family is the maker's own series only).
# ---------------------------------------------------------------------------
FAMILIES: dict[str, tuple[str, str]] = {
    "tokyotech-llm/Swallow-7b-hf": ("", "Swallow"),
    "tokyotech-llm/Swallow-13b-hf": ("", "Swallow"),
    "tokyotech-llm/Swallow-70b-hf": ("", "Swallow"),
    "tokyotech-llm/Swallow-MS-7b-v0.1": ("", "Swallow-MS"),
    "tokyotech-llm/Swallow-MX-8x7b-NVE-v0.1": ("", "Swallow-MX"),
    "tokyotech-llm/Llama-3-Swallow-8B-v0.1": ("", "Llama-3-Swallow"),
    "tokyotech-llm/Llama-3-Swallow-70B-v0.1": ("", "Llama-3-Swallow"),
    "tokyotech-llm/Llama-3.1-Swallow-8B-v0.1": ("", "Llama-3.1-Swallow"),
    "tokyotech-llm/Llama-3.1-Swallow-70B-v0.1": ("", "Llama-3.1-Swallow"),
    "tokyotech-llm/Llama-3.1-Swallow-8B-v0.2": ("", "Llama-3.1-Swallow"),
    "tokyotech-llm/Llama-3.3-Swallow-70B-v0.4": ("Llama 3.1", "Llama-3.3-Swallow"),
    "tokyotech-llm/Llama-3.3-Swallow-8B-v0.5": ("Llama 3.1", "Llama-3.3-Swallow"),
    "tokyotech-llm/Gemma-2-Llama-Swallow-2b-pt-v0.1": ("Gemma 2", "Gemma-2-Llama-Swallow"),
    "tokyotech-llm/Gemma-2-Llama-Swallow-9b-pt-v0.1": ("Gemma 2", "Gemma-2-Llama-Swallow"),
    "tokyotech-llm/Gemma-2-Llama-Swallow-27b-pt-v0.1": ("Gemma 2", "Gemma-2-Llama-Swallow"),
    "SakanaAI/TinySwallow-1.5B": ("Qwen2.5", "TinySwallow"),
    "meta-llama/Meta-Llama-3-8B": ("", "Llama 3"),
    "meta-llama/Meta-Llama-3-70B": ("", "Llama 3"),
    "rinna/llama-3-youko-8b": ("", "Youko"),
    "rinna/llama-3-youko-70b": ("", "Youko"),
    "rinna/gemma-2-baku-2b": ("", "Baku"),
    "01-ai/Yi-1.5-6B": ("", "Yi-1.5"),
    "01-ai/Yi-1.5-9B": ("", "Yi-1.5"),
    "01-ai/Yi-1.5-34B": ("", "Yi-1.5"),
    "stockmark/stockmark-100b": ("", "Stockmark"),
    "mistralai/Mistral-7B-v0.3": ("", "Mistral"),
    "mistralai/Mixtral-8x22B-v0.1": ("", "Mixtral"),
    "mistralai/Mistral-Nemo-Base-2407": ("", "Mistral-Nemo"),
    "nvidia/Mistral-NeMo-Minitron-8B-Base": ("", "Minitron"),
    "Qwen/Qwen2-7B": ("", "Qwen2"),
    "Qwen/Qwen2-72B": ("", "Qwen2"),
}

# ---------------------------------------------------------------------------
# Continued pretraining: model -> parent (and where that is stated).  These models start from the
# weights of a base model released before them as a model of its own; their size is the parent's.
# ---------------------------------------------------------------------------
PARENTS: dict[str, str] = {
    "tokyotech-llm/Swallow-7b-hf": "Llama 2 7B (Swallow model card)",
    "tokyotech-llm/Swallow-13b-hf": "Llama 2 13B (Swallow model card)",
    "tokyotech-llm/Swallow-70b-hf": "Llama 2 70B (Swallow model card)",
    "tokyotech-llm/Swallow-MS-7b-v0.1": "Mistral 7B v0.1 (swallow-llm.github.io/swallow-mistral)",
    "tokyotech-llm/Swallow-MX-8x7b-NVE-v0.1":
        "Mixtral-8x7B-Instruct-v0.1 (its model card: 'continuous pre-training from the "
        "Mixtral-8x7B-Instruct-v0.1')",
    "tokyotech-llm/Llama-3-Swallow-8B-v0.1": "Meta-Llama-3-8B (Llama 3 Swallow model card)",
    "tokyotech-llm/Llama-3-Swallow-70B-v0.1": "Meta-Llama-3-70B (Llama 3 Swallow model card)",
    "tokyotech-llm/Llama-3.1-Swallow-8B-v0.1": "Llama 3.1 8B (Llama 3.1 Swallow model card)",
    "tokyotech-llm/Llama-3.1-Swallow-70B-v0.1": "Llama 3.1 70B (Llama 3.1 Swallow model card)",
    "tokyotech-llm/Llama-3.1-Swallow-8B-v0.2": "Llama 3.1 8B (Llama 3.1 Swallow model card)",
    "tokyotech-llm/Llama-3.3-Swallow-70B-v0.4":
        "Llama 3.3 70B Instruct (Swallow model.yml 'base'; an instruction-tuned parent)",
    "tokyotech-llm/Llama-3.3-Swallow-8B-v0.5": "Llama 3.1 8B (Swallow model.yml 'base')",
    "tokyotech-llm/Gemma-2-Llama-Swallow-2b-pt-v0.1": "Gemma 2 2B (model name; Swallow family Gemma 2)",
    "tokyotech-llm/Gemma-2-Llama-Swallow-9b-pt-v0.1": "Gemma 2 9B (Swallow model.yml 'base')",
    "tokyotech-llm/Gemma-2-Llama-Swallow-27b-pt-v0.1": "Gemma 2 27B (Swallow model.yml 'base')",
    "SakanaAI/TinySwallow-1.5B":
        "Qwen2.5-1.5B-Instruct (Swallow model.yml 'base'; SakanaAI's distillation, not a Qwen "
        "release)",
    "rinna/llama-3-youko-8b": "Meta-Llama-3-8B (rinna model card)",
    "rinna/llama-3-youko-70b": "Meta-Llama-3-70B (rinna model card)",
    "rinna/gemma-2-baku-2b": "gemma-2-2b (rinna model card)",
    "nvidia/Mistral-NeMo-Minitron-8B-Base":
        "Mistral-NeMo 12B, pruned and distilled by NVIDIA (model card); size is not the parent's",
    "01-ai/Yi-1.5-6B": "Yi-6B, the maker's own continued pretraining on 500B tokens (Yi-1.5 card)",
    "01-ai/Yi-1.5-9B": "Yi-9B, the maker's own continued pretraining on 500B tokens (Yi-1.5 card)",
    "01-ai/Yi-1.5-34B": "Yi-34B, the maker's own continued pretraining on 500B tokens (Yi-1.5 card)",
}

# Derived from a sibling of the same release by its maker: part of one recipe, not flagged.
REMARKS: dict[str, str] = {
    "tiiuae/Falcon3-1B-Base":
        "pruned and distilled from a larger Falcon3 model of the same release (falcon3 blog); "
        "continued_pretraining false: same maker, same release",
    "tiiuae/Falcon3-3B-Base":
        "pruned and distilled from a larger Falcon3 model of the same release (falcon3 blog); "
        "continued_pretraining false: same maker, same release",
    "tiiuae/Falcon3-10B-Base":
        "depth-up-scaled from Falcon3-7B-Base and trained on 2T more tokens (falcon3 blog; tokens "
        "16 counts the 7B's 14T); continued_pretraining false: same maker, same release",
}

# ---------------------------------------------------------------------------
# Sizes.  model_meta.csv's values are taken for these models (precise per-model figures from the
# maker); Swallow's (two significant digits) for the rest.  model_meta.csv's Qwen3 sizes are the
# report's nominal ones (8, 14) and less precise than Swallow's (8.2, 15), so they are not used.
# ---------------------------------------------------------------------------
PARAMS_FROM_META = REFERENCE_MODELS + (
    "meta-llama/Llama-3.2-1B",
    "meta-llama/Llama-4-Scout-17B-16E",
)
# model -> (Swallow's total, Swallow's active or None, total, active, note)
PARAMS_FIXES: dict[str, tuple[float, float | None, float, float, str]] = {
    "Qwen/Qwen3-30B-A3B-Base": (
        31.0, 3.3, 30.5, 3.3,
        "params 31 -> 30.5 total / 3.3 active (Qwen3-30B-A3B model card: 30.5B total, 3.3B "
        "activated; recent/README point 8; model_meta.csv's 30/3 are the report's nominal sizes)"),
}
# MoE models whose sizes come from open_base_llms.csv: model -> (Swallow's total, bundled model, note)
MOE_FROM_BUNDLED: dict[str, tuple[float, str, str]] = {
    "mistralai/Mixtral-8x22B-v0.1": (
        141.0, "mistralai/Mixtral-8x22B-v0.1",
        "MoE: 141 total / 39 active (active size from open_base_llms.csv; Swallow gives the total only)"),
    "tokyotech-llm/Swallow-MX-8x7b-NVE-v0.1": (
        47.0, "mistralai/Mixtral-8x7B-v0.1",
        "MoE: params 47 -> 46.7 total / 12.9 active, the parent Mixtral 8x7B's sizes "
        "(open_base_llms.csv); Swallow gives the total rounded"),
}

# ---------------------------------------------------------------------------
# Tokens.  Series figures that bound every size from above go in tokens_upper, never in tokens.
# ---------------------------------------------------------------------------
TOKENS_UPPER: dict[str, str] = {
    **{m: "tokens_upper 18: 'up to 18 trillion tokens' for the Qwen2.5 series (Qwen2.5 blog), "
          "not a per-size count" for m in REFERENCE_MODELS},
    **{f"Qwen/Qwen3-{s}-Base": "tokens_upper 36: '36 trillion tokens' for the Qwen3 series "
                               "(Qwen3 report), not a per-size count"
       for s in ("0.6B", "1.7B", "4B", "8B", "14B", "30B-A3B")},
    "meta-llama/Llama-3.2-1B": "tokens_upper 9: 'up to 9T tokens' for Llama 3.2 (model card), "
                               "plus distillation",
    "meta-llama/Llama-3.2-3B": "tokens_upper 9: 'up to 9T tokens' for Llama 3.2 (model card), "
                               "plus distillation",
}

# ---------------------------------------------------------------------------
# Scores left out: (model, benchmark) -> (release marker, score in source, note).
# ---------------------------------------------------------------------------
DROPPED: dict[tuple[str, str], tuple[str, float, str]] = {
    ("meta-llama/Llama-4-Scout-17B-16E", "bbh"): (
        "swallow-llm/leaderboard@ed3805c:", 0.289,
        "BBH score 0.289 (swallow-v2) left out: a failed run (the same board gave 0.618 at v1.0 "
        "and the Qwen3 report 0.824, while its Swallow GSM8K, MATH and MMLU are within 0.05 of "
        "the makers' numbers); recent/README point 4"),
}

# Dates that differ from Swallow's once taken from a more precise source: model -> (Swallow's, why).
DATE_REASONS: dict[str, tuple[str, str]] = {
    "meta-llama/Llama-4-Scout-17B-16E": (
        "2025-04-04", "release_date 2025-04-05 from the Llama 4 model card (Swallow: 2025-04-04)"),
    "google/gemma-2-2b": (
        "2024-06-27", "release_date 2024-07-31 (open_base_llms.csv: the 2B came after the 9B and "
                      "27B; Swallow gives the family's 2024-06-27)"),
    "01-ai/Yi-1.5-6B": ("2024-05-13", "release_date 2024-05-12 from open_base_llms.csv (Swallow: 2024-05-13)"),
    "01-ai/Yi-1.5-9B": ("2024-05-13", "release_date 2024-05-12 from open_base_llms.csv (Swallow: 2024-05-13)"),
    "01-ai/Yi-1.5-34B": ("2024-05-13", "release_date 2024-05-12 from open_base_llms.csv (Swallow: 2024-05-13)"),
}


class BuildError(ValueError):
    """The inputs are not what this build was written for."""


def _close(a: float, b: float) -> bool:
    return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(b)))


def _read(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise BuildError(f"{path}: not found; give --source the folder that holds recent/")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    if list(df.columns) != columns:
        raise BuildError(f"{path}: unexpected columns {list(df.columns)}")
    return df


def _num(value: str) -> float:
    return float(value) if value != "" else float("nan")


def task_source(raw_source: str, benchmark: str) -> str:
    """The task-source label of a Swallow row: ``swallow``, or the release's label for BBH."""
    for marker, (label, _) in RELEASES.items():
        if raw_source.startswith(marker):
            return label if benchmark == SPLIT_BENCHMARK else TASK_SOURCE
    raise BuildError(f"source {raw_source[:60]!r} is from neither Swallow release")


def _check_source(src: pd.DataFrame) -> None:
    if src.duplicated(["model", "benchmark"]).any():
        raise BuildError("duplicate (model, benchmark) rows in the Swallow table")
    if sorted(src["benchmark"].unique()) != sorted(BENCHMARKS):
        raise BuildError(f"unexpected benchmarks {sorted(src['benchmark'].unique())}")
    per_model = ["family", "params_b", "params_active_b", "tokens_t", "release_date", "source"]
    varying = src.groupby("model")[per_model].nunique().gt(1).any(axis=1)
    if varying.any():
        raise BuildError(f"per-model fields vary within {list(varying[varying].index)}")
    for marker, (label, n) in RELEASES.items():
        got = src.loc[src["source"].str.startswith(marker), "model"].nunique()
        if got != n:
            raise BuildError(f"{label}: expected {n} models, found {got}")


def model_table(src: pd.DataFrame, meta: pd.DataFrame, bundled: pd.DataFrame) -> pd.DataFrame:
    """One row per model: the model-level columns of the output, with notes."""
    first = src.drop_duplicates("model").set_index("model")
    meta = meta.set_index("model")
    bund = bundled.drop_duplicates("model").set_index("model")
    models = sorted(first.index)
    for name, table in (("FAMILIES", FAMILIES), ("PARENTS", PARENTS), ("REMARKS", REMARKS),
                        ("PARAMS_FIXES", PARAMS_FIXES), ("MOE_FROM_BUNDLED", MOE_FROM_BUNDLED),
                        ("TOKENS_UPPER", TOKENS_UPPER), ("DATE_REASONS", DATE_REASONS)):
        absent = sorted(set(table) - set(models))
        if absent:
            raise BuildError(f"{name} names models absent from the Swallow table: {absent}")
    rows = []
    for model in models:
        row = first.loc[model]
        notes: list[str] = []
        # family
        family = row["family"]
        if model in FAMILIES:
            old, family = FAMILIES[model]
            if row["family"] != old:
                raise BuildError(f"{model}: family is {row['family']!r}, expected {old!r}")
            if old:
                notes.append(f"family {old!r} -> {family!r}: Swallow files it under its parent's "
                             f"series; a family here is the maker's own series")
        if not family:
            raise BuildError(f"{model}: blank family and no entry in FAMILIES")
        # sizes
        params, active = _num(row["params_b"]), _num(row["params_active_b"])
        if model in PARAMS_FROM_META:
            if model not in meta.index or meta.loc[model, "params_b"] == "":
                raise BuildError(f"{model}: no params in model_meta.csv")
            new, new_active = _num(meta.loc[model, "params_b"]), _num(meta.loc[model, "params_active_b"])
            if abs(new - params) > 0.1 * params:
                raise BuildError(f"{model}: model_meta params {new} far from Swallow's {params}")
            if not _close(new, params):
                notes.append(f"params {params:g} -> {new:g} (model_meta.csv, the maker's figure; "
                             "Swallow's has two significant digits)")
            params, active = new, new_active
        if model in PARAMS_FIXES:
            old_total, old_active, params_new, active_new, note = PARAMS_FIXES[model]
            if not _close(params, old_total) or (old_active is not None and not _close(active, old_active)):
                raise BuildError(f"{model}: params are {params}/{active}, expected {old_total}/{old_active}")
            params, active = params_new, active_new
            notes.append(note)
        if model in MOE_FROM_BUNDLED:
            old_total, bundled_model, note = MOE_FROM_BUNDLED[model]
            if not _close(params, old_total) or active == active:   # active must be blank (NaN)
                raise BuildError(f"{model}: params are {params}/{active}, expected {old_total}/blank")
            params = float(bund.loc[bundled_model, "params"])
            active = float(bund.loc[bundled_model, "params_active"])
            if not active < params:
                raise BuildError(f"{bundled_model}: open_base_llms.csv has no MoE sizes")
            notes.append(note)
        if active != active:                                # blank active: a dense model
            active = params
        # tokens
        tokens = tokens_upper = float("nan")
        meta_tokens = _num(meta.loc[model, "tokens_t"]) if model in meta.index else float("nan")
        swallow_tokens = _num(row["tokens_t"])
        if swallow_tokens == swallow_tokens and not _close(swallow_tokens, meta_tokens):
            raise BuildError(f"{model}: Swallow table tokens {swallow_tokens} != model_meta {meta_tokens}")
        if model in TOKENS_UPPER:
            if meta_tokens != meta_tokens:
                raise BuildError(f"{model}: no token figure in model_meta.csv for tokens_upper")
            tokens_upper = meta_tokens
            notes.append(TOKENS_UPPER[model])
        elif meta_tokens == meta_tokens:
            tokens = meta_tokens
        elif model in bund.index and bund.loc[model, "tokens"] != "":
            tokens = float(bund.loc[model, "tokens"])
        # release date
        if model in meta.index and meta.loc[model, "release_date"] != "":
            date, date_source = meta.loc[model, "release_date"], "model_meta"
        elif model in bund.index:
            date, date_source = bund.loc[model, "release_date"], "open_base_llms"
        else:
            date, date_source = row["release_date"], "swallow"
        if date != row["release_date"]:
            if model not in DATE_REASONS or DATE_REASONS[model][0] != row["release_date"]:
                raise BuildError(f"{model}: date {date} ({date_source}) differs from Swallow's "
                                 f"{row['release_date']} without an entry in DATE_REASONS")
            notes.append(DATE_REASONS[model][1])
        elif model in DATE_REASONS:
            raise BuildError(f"{model}: DATE_REASONS entry but the date is Swallow's")
        # flags
        continued = model in PARENTS
        if continued:
            notes.append(f"continued pretraining of {PARENTS[model]}")
        if model in REMARKS:
            notes.append(REMARKS[model])
        rows.append({
            "model": model, "family": family, "params": params, "params_active": active,
            "tokens": tokens, "tokens_upper": tokens_upper, "release_date": date,
            "date_source": date_source,
            "role": "reference" if model in REFERENCE_MODELS else "target",
            "continued_pretraining": continued, "notes": notes,
        })
    return pd.DataFrame(rows).set_index("model")


def build(source_dir: Path, bundled_path: Path = BUNDLED) -> pd.DataFrame:
    """Return the dataset built from ``source_dir/recent`` and the bundled open_base_llms.csv."""
    src = _read(source_dir / SCORES_FILE, SOURCE_COLUMNS)
    meta = _read(source_dir / META_FILE, META_COLUMNS)
    bundled = pd.read_csv(bundled_path, dtype=str, keep_default_na=False)
    _check_source(src)
    models = model_table(src, meta, bundled)

    df = src.copy()
    df["source_label"] = [task_source(s, b) for s, b in zip(df["source"], df["benchmark"])]
    keep = pd.Series(True, index=df.index)
    for (model, bench), (marker, old, note) in DROPPED.items():
        hit = (df["model"] == model) & (df["benchmark"] == bench)
        if hit.sum() != 1:
            raise BuildError(f"dropped score {model}/{bench} not found once")
        row = df[hit].iloc[0]
        if not row["source"].startswith(marker) or not _close(float(row["score"]), old):
            raise BuildError(f"{model}/{bench}: score {row['score']} ({row['source'][:40]}), "
                             f"expected {old}")
        keep &= ~hit
        models.loc[model, "notes"].append(note)
    df = df[keep]

    out = pd.DataFrame({
        "model": df["model"], "benchmark": df["benchmark"], "source": df["source_label"],
        "score": df["score"].astype(float), "shots": df["shots"], "provenance": df["source"],
    })
    for col in ("family", "params", "params_active", "tokens", "tokens_upper", "release_date",
                "date_source", "role", "continued_pretraining"):
        out[col] = out["model"].map(models[col])
    out["note"] = out["model"].map(models["notes"].map("; ".join))

    # checks on the result
    if out["model"].nunique() != EXPECTED_MODELS or len(out) != EXPECTED_ROWS:
        raise BuildError(f"expected {EXPECTED_MODELS} models / {EXPECTED_ROWS} rows, "
                         f"got {out['model'].nunique()} / {len(out)}")
    refs = sorted(out.loc[out["role"] == "reference", "model"].unique())
    in_family = sorted(out.loc[out["family"] == REFERENCE_FAMILY, "model"].unique())
    if refs != sorted(REFERENCE_MODELS) or in_family != refs:
        raise BuildError(f"reference models {refs} / family {REFERENCE_FAMILY} {in_family}")
    if not out["score"].between(0.0, 1.0).all():
        raise BuildError("score outside [0, 1]")
    if (out["params_active"] > out["params"]).any():
        raise BuildError("params_active > params")
    if (out["tokens"].notna() & out["tokens_upper"].notna()).any():
        raise BuildError("a model has both tokens and tokens_upper")
    pd.to_datetime(out["release_date"], format="%Y-%m-%d")   # raises if malformed

    out = out.sort_values(["release_date", "model", "benchmark", "source"], kind="mergesort")
    return out[OUTPUT_COLUMNS].reset_index(drop=True)


def to_csv_text(df: pd.DataFrame) -> str:
    """Serialise deterministically: 6 significant digits, true/false, '' for NA."""
    out = df.copy()
    out["continued_pretraining"] = out["continued_pretraining"].map({True: "true", False: "false"})
    for col in FLOATS:
        out[col] = out[col].map(lambda x: "" if pd.isna(x) else f"{x:.6g}")
    return out.to_csv(index=False, lineterminator="\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                        help="folder holding recent/swallow_en_pre.csv (default: ../shared/data)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output CSV (default: bayes_densing/datasets/swallow_2025.csv)")
    args = parser.parse_args(argv)
    try:
        df = build(args.source)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8", newline="") as fh:
        fh.write(to_csv_text(df))
    dates = df["release_date"]
    print(f"wrote {args.out}: {df['model'].nunique()} models, {len(df)} rows, "
          f"{df['benchmark'].nunique()} benchmarks, {dates.min()} .. {dates.max()}, "
          f"{(df.drop_duplicates('model')['role'] == 'reference').sum()} reference models")
    return 0


if __name__ == "__main__":
    sys.exit(main())
