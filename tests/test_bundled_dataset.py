"""Checks on the bundled dataset bayes_densing/datasets/open_base_llms.csv."""
from __future__ import annotations

import csv
import datetime as dt
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import bayes_densing

DATASET = Path(bayes_densing.__file__).parent / "datasets" / "open_base_llms.csv"
REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO_ROOT / "tools" / "build_open_base_llms.py"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

COLUMNS = [
    "model", "family", "params", "params_active", "tokens", "release_date",
    "date_precision", "benchmark", "suite", "score", "is_base", "specialist",
    "in_densing_paper", "note",
]
MODEL_LEVEL = [
    "family", "params", "params_active", "tokens", "release_date", "date_precision",
    "is_base", "specialist", "in_densing_paper", "note",
]
MOE = {  # model -> (total, active), billions
    "mistralai/Mixtral-8x7B-v0.1": (46.7, 12.9),
    "mistralai/Mixtral-8x22B-v0.1": (141.0, 39.0),
    "Qwen/Qwen2-57B-A14B": (57.0, 14.0),
    "deepseek-ai/DeepSeek-V2": (236.0, 21.0),
    "deepseek-ai/DeepSeek-Coder-V2-Base": (236.0, 21.0),
    "ai21labs/Jamba-v0.1": (52.0, 12.0),
    "deepseek-ai/deepseek-moe-16b-base": (16.4, 2.8),
}
DENSING_PAPER = {
    "huggyllama/llama-7b", "huggyllama/llama-13b", "huggyllama/llama-65b",
    "meta-llama/Llama-2-7b-hf", "meta-llama/Llama-2-13b-hf", "meta-llama/Llama-2-70b-hf",
    "meta-llama/Meta-Llama-3-8B", "meta-llama/Meta-Llama-3-70B",
    "meta-llama/Meta-Llama-3.1-8B", "meta-llama/Meta-Llama-3.1-405B-FP8",
    "mistralai/Mistral-7B-v0.1", "tiiuae/falcon-40b", "mosaicml/mpt-30b",
    "microsoft/phi-1_5", "microsoft/phi-2",
    "google/gemma-2b", "google/gemma-7b",
    "google/gemma-2-2b", "google/gemma-2-9b", "google/gemma-2-27b",
    "TinyLlama/TinyLlama_v1.1",
}
CODE_FAMILIES = {"StarCoder", "StarCoder2", "CodeLlama", "DeepSeek-Coder", "DeepSeek-Coder-V2"}


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return pd.read_csv(DATASET, keep_default_na=False, na_values=[""])


@pytest.fixture(scope="module")
def models(df) -> pd.DataFrame:
    return df.drop_duplicates("model").set_index("model")


def test_columns_exact(df):
    assert list(df.columns) == COLUMNS


def test_size(df):
    assert df["model"].nunique() == 148
    assert len(df) == 1576
    assert df["benchmark"].nunique() == 14


def test_no_duplicate_rows(df):
    assert not df.duplicated(["model", "benchmark"]).any()


def test_scores_are_fractions(df):
    assert df["score"].notna().all()
    assert df["score"].between(0.0, 1.0).all()


def test_one_value_per_model(df):
    counts = df.groupby("model")[MODEL_LEVEL].nunique(dropna=False)
    assert (counts == 1).all().all(), counts[(counts != 1).any(axis=1)]


def test_release_dates_parse_and_not_future(df):
    dates = pd.to_datetime(df["release_date"], format="%Y-%m-%d", errors="raise")
    assert dates.min() >= pd.Timestamp("2019-01-01")
    assert dates.max() <= pd.Timestamp(dt.date.today())
    assert set(df["date_precision"]) <= {"day", "month"}


def test_sorted(df):
    key = df[["release_date", "model", "benchmark"]].astype(str)
    assert key.equals(key.sort_values(list(key.columns)).reset_index(drop=True))


def test_booleans_written_as_true_false():
    with open(DATASET, newline="", encoding="utf-8") as fh:
        header, *rows = list(csv.reader(fh))
    idx = [header.index(c) for c in ("is_base", "specialist", "in_densing_paper")]
    for fields in rows:
        assert all(fields[i] in ("true", "false") for i in idx), fields
    frame = pd.read_csv(DATASET)
    for c in ("is_base", "specialist", "in_densing_paper"):
        assert frame[c].dtype == bool


def test_params_positive_and_active_filled(df):
    assert df["params"].notna().all() and (df["params"] > 0).all()
    assert df["params_active"].notna().all() and (df["params_active"] > 0).all()
    assert (df["params_active"] <= df["params"]).all()
    assert (df["tokens"].dropna() > 0).all()
    assert (df["tokens"].dropna() < 100).all()  # trillions, not billions


def test_dense_models_active_equals_total(models):
    dense = models.drop(index=list(MOE))
    assert (dense["params_active"] == dense["params"]).all()


@pytest.mark.parametrize("model,total,active", [(m, t, a) for m, (t, a) in MOE.items()])
def test_moe_sizes(models, model, total, active):
    assert models.loc[model, "params"] == pytest.approx(total)
    assert models.loc[model, "params_active"] == pytest.approx(active)
    assert models.loc[model, "note"].startswith("MoE:")


def test_moe_are_the_only_sparse_models(models):
    sparse = set(models.index[models["params_active"] < models["params"]])
    assert sparse == set(MOE)


def test_open_llama_7b_v2_is_7b(models):
    row = models.loc["openlm-research/open_llama_7b_v2"]
    assert row["params"] == 7.0
    assert row["params_active"] == 7.0
    assert "13 -> 7" in row["note"]


def test_btlm_tokens(models):
    row = models.loc["cerebras/btlm-3b-8k-base"]
    assert row["tokens"] == pytest.approx(0.627)
    assert "627 -> 0.627" in row["note"]


@pytest.mark.parametrize("model,tokens", [
    ("openlm-research/open_llama_13b", 1.0),
    ("togethercomputer/RedPajama-INCITE-Base-7B-v0.1", 0.8),
    ("stabilityai/stablelm-base-alpha-3b", 0.8),
    ("stabilityai/stablelm-base-alpha-7b", 0.8),
    ("google/gemma-2b", 3.0),
    ("TinyLlama/TinyLlama_v1.1", 2.0),
])
def test_further_token_corrections(models, model, tokens):
    assert models.loc[model, "tokens"] == pytest.approx(tokens)
    assert "tokens corrected" in models.loc[model, "note"]


def test_in_densing_paper_exactly_21(models):
    flagged = set(models.index[models["in_densing_paper"]])
    assert len(flagged) == 21
    assert flagged == DENSING_PAPER


def test_is_base(models):
    assert not models.loc["RWKV/rwkv-raven-14b", "is_base"]
    assert set(models.index[~models["is_base"]]) == {"RWKV/rwkv-raven-14b"}


def test_specialists(models):
    code = models["family"].isin(CODE_FAMILIES)
    assert code.sum() == 15
    assert models.loc[code, "specialist"].all()
    # CodeGen-NL was trained on the Pile (general text), so it is not flagged.
    for m in ("Salesforce/codegen-6B-nl", "Salesforce/codegen-16B-nl"):
        assert not models.loc[m, "specialist"]
        assert "CodeGen-NL" in models.loc[m, "note"]
    assert set(models.index[models["specialist"]]) == set(models.index[code])


def test_notes_blank_unless_remark(df, models):
    assert df["note"].isna().sum() > 0  # blank for most models
    noted = set(models.index[models["note"].notna()])
    assert set(MOE) <= noted
    assert "RWKV/rwkv-raven-14b" in noted


def test_rebuild_is_byte_identical(tmp_path):
    if not (SHARED_DATA / "open_base_llms.csv").is_file():
        pytest.skip(f"shared source data not found at {SHARED_DATA}")
    out = tmp_path / "open_base_llms.csv"
    subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--source", str(SHARED_DATA), "--out", str(out)],
        check=True, capture_output=True, text=True,
    )
    assert out.read_bytes() == DATASET.read_bytes()
