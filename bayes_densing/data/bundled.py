"""The datasets bundled with the package, and the reference family a file of targets only borrows."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from bayes_densing.config import Config
from bayes_densing.data.anchoring import MIN_SHARED_MODELS, MIN_SHARED_SPAN, anchor_shortfall
from bayes_densing.data.messages import DataError, fail
from bayes_densing.data.read import read_scores


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
        # the benchmark rule's set; GPQA, borderline, stays out (docs/analyses.md, "`open-base-llms`")
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
        # the rule's set less SQuAD 2.0: its smallest references score at its floor, and with it
        # the curve fit diverged (docs/analyses.md, "`swallow-2025`")
        benchmarks=("bbh@swallow-v2", "hellaswag@swallow", "mmlu@swallow", "triviaqa@swallow",
                    "xwinograd@swallow"),
        since="2023-01-01",
    ),
]}


def dataset_path(name: str) -> Path:
    """The installed CSV of the bundled dataset ``name``."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; bundled datasets: {', '.join(DATASETS)}")
    return Path(str(resources.files("bayes_densing") / "datasets" / DATASETS[name].filename))


def bundled_reference(config: Config) -> pd.DataFrame:
    """The scores of the bundled dataset's default reference family (``data.dataset``): the
    reference a file of targets only borrows."""
    bundled = DATASETS[config.data.dataset]
    ref, _ = read_scores(dataset_path(bundled.name))
    return ref[ref.family == bundled.reference]


def add_bundled_reference(df, path, benchmarks, config, notices):
    """A file of targets only: borrow the bundled dataset's default reference family."""
    bundled = DATASETS[config.data.dataset]
    ref = bundled_reference(config)
    shared = sorted(set(df.benchmark) & set(ref.benchmark))
    if benchmarks:
        shared = [b for b in shared if b in benchmarks]
    if not shared:
        raise fail(path, f"column 'benchmark': no reference models given (no 'role' column, no "
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
        short = anchor_shortfall(rows.params)
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
