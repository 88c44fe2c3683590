"""Checks on bayes_densing/datasets/swallow_2025.csv and the tools that build it and its local twin."""
from __future__ import annotations

import datetime as dt
import importlib.util
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import bayes_densing
from bayes_densing.data import read_scores

DATASET = Path(bayes_densing.__file__).parent / "datasets" / "swallow_2025.csv"
REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO_ROOT / "tools" / "build_swallow_2025.py"
LOCAL_SCRIPT = REPO_ROOT / "tools" / "build_reported_local.py"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
HAVE_SHARED = (SHARED_DATA / "recent" / "swallow_en_pre.csv").is_file()
NO_SHARED = f"shared source data not found at {SHARED_DATA / 'recent'}"

COLUMNS = [
    "model", "family", "params", "params_active", "tokens", "tokens_upper", "release_date",
    "date_source", "role", "benchmark", "source", "score", "shots", "continued_pretraining",
    "note", "provenance",
]
MODEL_LEVEL = [
    "family", "params", "params_active", "tokens", "tokens_upper", "release_date", "date_source",
    "role", "continued_pretraining", "note",
]
REFERENCES = {f"Qwen/Qwen2.5-{s}B" for s in ("0.5", "1.5", "3", "7", "14", "32", "72")}
SCOUT = "meta-llama/Llama-4-Scout-17B-16E"
CONTINUED = {
    "tokyotech-llm/Swallow-7b-hf", "tokyotech-llm/Swallow-13b-hf", "tokyotech-llm/Swallow-70b-hf",
    "tokyotech-llm/Swallow-MS-7b-v0.1", "tokyotech-llm/Swallow-MX-8x7b-NVE-v0.1",
    "tokyotech-llm/Llama-3-Swallow-8B-v0.1", "tokyotech-llm/Llama-3-Swallow-70B-v0.1",
    "tokyotech-llm/Llama-3.1-Swallow-8B-v0.1", "tokyotech-llm/Llama-3.1-Swallow-70B-v0.1",
    "tokyotech-llm/Llama-3.1-Swallow-8B-v0.2", "tokyotech-llm/Llama-3.3-Swallow-70B-v0.4",
    "tokyotech-llm/Llama-3.3-Swallow-8B-v0.5", "tokyotech-llm/Gemma-2-Llama-Swallow-2b-pt-v0.1",
    "tokyotech-llm/Gemma-2-Llama-Swallow-9b-pt-v0.1",
    "tokyotech-llm/Gemma-2-Llama-Swallow-27b-pt-v0.1", "SakanaAI/TinySwallow-1.5B",
    "rinna/llama-3-youko-8b", "rinna/llama-3-youko-70b", "rinna/gemma-2-baku-2b",
    "nvidia/Mistral-NeMo-Minitron-8B-Base",
    "01-ai/Yi-1.5-6B", "01-ai/Yi-1.5-9B", "01-ai/Yi-1.5-34B",
}
MOE = {  # model -> (total, active), billions
    SCOUT: (109.0, 17.0),
    "Qwen/Qwen3-30B-A3B-Base": (30.5, 3.3),
    "mistralai/Mixtral-8x22B-v0.1": (141.0, 39.0),
    "tokyotech-llm/Swallow-MX-8x7b-NVE-v0.1": (46.7, 12.9),
}


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return pd.read_csv(DATASET, keep_default_na=False, na_values=[""])


@pytest.fixture(scope="module")
def models(df) -> pd.DataFrame:
    return df.drop_duplicates("model").set_index("model")


def test_columns_exact(df):
    assert list(df.columns) == COLUMNS


def test_size(df):
    assert df["model"].nunique() == 75
    assert len(df) == 749
    assert df.groupby("benchmark").size().to_dict() == {
        "bbh": 74, "gsm8k": 75, "hellaswag": 75, "humaneval": 75, "math": 75, "mmlu": 75,
        "openbookqa": 75, "squad2": 75, "triviaqa": 75, "xwinograd": 75}


def test_no_duplicate_tasks(df):
    assert not df.duplicated(["model", "benchmark", "source"]).any()


def test_reference_models_are_the_seven_qwen25_bases(df, models):
    assert set(models.index[models["role"] == "reference"]) == REFERENCES
    assert set(df["role"]) == {"reference", "target"}
    assert set(models.index[models["family"] == "Qwen2.5"]) == REFERENCES


def test_tinyswallow_is_a_target_of_its_own_family(models):
    row = models.loc["SakanaAI/TinySwallow-1.5B"]
    assert row["role"] == "target"
    assert row["family"] == "TinySwallow"
    assert "'Qwen2.5' -> 'TinySwallow'" in row["note"]


def test_swallow_series_have_their_own_families(models):
    for prefix, family in (("tokyotech-llm/Llama-3.3-Swallow", "Llama-3.3-Swallow"),
                           ("tokyotech-llm/Gemma-2-Llama-Swallow", "Gemma-2-Llama-Swallow")):
        rows = models[models.index.str.startswith(prefix)]
        assert len(rows) >= 2 and set(rows["family"]) == {family}
        assert rows["note"].str.contains(f"-> '{family}'").all()
    assert models["family"].notna().all()


def test_no_tokens_on_references_and_upper_bounds_apart(df, models):
    assert models.loc[sorted(REFERENCES), "tokens"].isna().all()
    assert (models.loc[sorted(REFERENCES), "tokens_upper"] == 18).all()
    upper = df[df["tokens_upper"].notna()]
    assert len(upper) and upper["tokens"].isna().all()
    for m in ("meta-llama/Llama-3.2-1B", "meta-llama/Llama-3.2-3B", "Qwen/Qwen3-8B-Base"):
        assert pd.isna(models.loc[m, "tokens"]) and models.loc[m, "tokens_upper"] > 0
        assert "tokens_upper" in models.loc[m, "note"]
    assert models.loc["google/gemma-3-27b-pt", "tokens"] == 14


def test_model_level_columns_have_one_value_per_model(df):
    counts = df.groupby("model")[MODEL_LEVEL].nunique(dropna=False)
    assert (counts == 1).all().all()


def test_task_sources(df):
    bbh = df[df["benchmark"] == "bbh"]
    assert set(bbh["source"]) == {"swallow-v1", "swallow-v2"}
    assert set(df.loc[df["benchmark"] != "bbh", "source"]) == {"swallow"}
    # the BBH label follows the release named in the row's provenance
    v1 = bbh["provenance"].str.contains("@v1.0:")
    assert (bbh.loc[v1, "source"] == "swallow-v1").all()
    assert (bbh.loc[~v1, "source"] == "swallow-v2").all()
    assert bbh["source"].value_counts().to_dict() == {"swallow-v2": 49, "swallow-v1": 25}


def test_scout_bbh_left_out_and_said_so(df, models):
    assert not ((df["model"] == SCOUT) & (df["benchmark"] == "bbh")).any()
    assert (df["model"] == SCOUT).sum() == 9
    assert "BBH score 0.289" in models.loc[SCOUT, "note"]
    assert "failed run" in models.loc[SCOUT, "note"]


def test_continued_pretraining_flags(models):
    flagged = set(models.index[models["continued_pretraining"]])
    assert flagged == CONTINUED
    for model in CONTINUED:
        assert "continued pretraining of " in models.loc[model, "note"]
    assert models["continued_pretraining"].dtype == bool


def test_sizes(models):
    for model, (total, active) in MOE.items():
        assert models.loc[model, "params"] == pytest.approx(total)
        assert models.loc[model, "params_active"] == pytest.approx(active)
    dense = models[~models.index.isin(MOE)]
    assert (dense["params"] == dense["params_active"]).all()
    assert models.loc["Qwen/Qwen2.5-0.5B", "params"] == pytest.approx(0.49)
    assert models.loc["Qwen/Qwen2.5-32B", "params"] == pytest.approx(32.5)
    assert "params 31 -> 30.5" in models.loc["Qwen/Qwen3-30B-A3B-Base", "note"]


def test_dates(models):
    dates = pd.to_datetime(models["release_date"], format="%Y-%m-%d")
    assert dates.max().date() <= dt.date.today()
    assert dates.min() == pd.Timestamp("2023-12-19") and dates.max() == pd.Timestamp("2025-11-14")
    assert set(models["date_source"]) <= {"model_meta", "open_base_llms", "swallow", "upload"}
    assert models.loc[SCOUT, "release_date"] == "2025-04-05"
    assert models.loc["google/gemma-2-2b", "release_date"] == "2024-07-31"
    assert "2024-07-31" in models.loc["google/gemma-2-2b", "note"]
    assert models.loc["meta-llama/Llama-3.2-1B", "release_date"] == "2024-09-25"


def test_sorted_and_formatted(df):
    key = df[["release_date", "model", "benchmark", "source"]].astype(str)
    assert key.apply(tuple, axis=1).is_monotonic_increasing
    text = DATASET.read_text(encoding="utf-8")
    assert "\r" not in text and text.endswith("\n")
    assert set(df["continued_pretraining"].map(str)) <= {"True", "False"}
    assert df["score"].between(0, 1).all()


def test_reads_cleanly_with_the_package():
    table, notices = read_scores(DATASET)
    assert notices == []
    assert len(table) == 749 and table["model"].nunique() == 75


def test_rebuild_is_byte_identical(tmp_path):
    if not HAVE_SHARED:
        pytest.skip(NO_SHARED)
    out = tmp_path / "swallow_2025.csv"
    subprocess.run([sys.executable, str(BUILD_SCRIPT), "--source", str(SHARED_DATA), "--out", str(out)],
                   check=True, capture_output=True, text=True)
    assert out.read_bytes() == DATASET.read_bytes()


def test_build_refuses_a_changed_input(tmp_path):
    """A value a correction replaces is checked first: a changed source stops the build."""
    if not HAVE_SHARED:
        pytest.skip(NO_SHARED)
    (tmp_path / "recent").mkdir()
    for name in ("swallow_en_pre.csv", "model_meta.csv"):
        text = (SHARED_DATA / "recent" / name).read_text(encoding="utf-8")
        if name == "swallow_en_pre.csv":
            text = text.replace("SakanaAI/TinySwallow-1.5B,Qwen2.5,", "SakanaAI/TinySwallow-1.5B,Qwen,")
        (tmp_path / "recent" / name).write_text(text, encoding="utf-8")
    run = subprocess.run([sys.executable, str(BUILD_SCRIPT), "--source", str(tmp_path),
                          "--out", str(tmp_path / "out.csv")], capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.startswith("error: SakanaAI/TinySwallow-1.5B: family is 'Qwen'")
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "out.csv").exists()


# --- tools/build_reported_local.py: the local, never-shipped harness-vs-reported table ----------

@pytest.fixture(scope="module")
def local(tmp_path_factory) -> pd.DataFrame:
    if not HAVE_SHARED:
        pytest.skip(NO_SHARED)
    out = tmp_path_factory.mktemp("local") / "harness_vs_reported.csv"
    run = subprocess.run([sys.executable, str(LOCAL_SCRIPT), "--source", str(SHARED_DATA),
                          "--out", str(out)], capture_output=True, text=True, check=True)
    assert run.stdout.startswith(f"wrote {out}")
    return pd.read_csv(out, keep_default_na=False, na_values=[""])


def test_local_table_format(local, df):
    assert list(local.columns) == COLUMNS + ["rerun_by"]
    assert not local.duplicated(["model", "benchmark", "source"]).any()
    assert (local.groupby("model")[MODEL_LEVEL].nunique(dropna=False) <= 1).all().all()
    # the Swallow part is the shipped dataset, row for row
    sw_rows = local[local["source"].str.startswith("swallow")][COLUMNS].reset_index(drop=True)
    pd.testing.assert_frame_equal(sw_rows, df[COLUMNS].reset_index(drop=True))
    assert {"qwen3-report", "qwen2.5-blog", "olmes", "gemma3-card", "deepseek-v3",
            "llama3.2-card", "llama4-card", "hunyuan"} < set(local["source"])


def test_local_table_labels_a_makers_rerun(local):
    qwen3 = local[local["source"] == "qwen3-report"]
    gemma = qwen3[qwen3["model"].str.startswith("google/gemma-3")]
    assert len(gemma) and (gemma["rerun_by"] == "Qwen").all()
    assert (qwen3.loc[qwen3["model"].str.startswith("Qwen/"), "rerun_by"].isna()).all()
    own = local[(local["source"] == "gemma3-card")]
    assert len(own) and own["rerun_by"].isna().all()
    olmes = local[local["source"] == "olmes"]
    assert (olmes.loc[~olmes["model"].str.startswith("allenai/"), "rerun_by"] == "Ai2").all()
    assert local.loc[local["source"].str.startswith("swallow"), "rerun_by"].isna().all()


def test_local_table_one_benchmark_several_tasks(local):
    rows = local[(local["model"] == "Qwen/Qwen2.5-7B") & (local["benchmark"] == "hellaswag")]
    tasks = set(rows["benchmark"] + "@" + rows["source"])
    assert len(tasks) >= 2 and "hellaswag@swallow" in tasks
    assert rows["score"].max() - rows["score"].min() > 0.1    # harnesses disagree: never pooled


def test_local_table_reads_with_the_package(local, tmp_path):
    complete = local[local["params"].notna() & local["release_date"].notna()]
    path = tmp_path / "complete.csv"
    complete.to_csv(path, index=False)
    table, _ = read_scores(path)
    assert "hellaswag@qwen2.5-blog" in set(table["benchmark"])
    assert table["model"].nunique() == complete["model"].nunique()


def test_local_output_is_git_ignored():
    spec = importlib.util.spec_from_file_location("build_reported_local", LOCAL_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    default = module.DEFAULT_OUT.relative_to(REPO_ROOT)
    assert default.parts[0] == "runs"
    if not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    run = subprocess.run(["git", "check-ignore", "-q", str(default)], cwd=REPO_ROOT,
                         capture_output=True)
    assert run.returncode == 0, f"the local table's default output {default} must be git-ignored"
