"""Tasks without reference scores: anchored after the fit by the models they share with the
others (a sequential cut, inference/sequential.py), provided enough shared models span enough sizes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_densing.config import Config
from bayes_densing.data.messages import fail, line_numbers, show
from bayes_densing.data.tasks import items_and_chance

MIN_SHARED_MODELS, MIN_SHARED_SPAN = 5, 10.0   # what anchors a task without reference scores


def anchor_shortfall(sizes: pd.Series) -> tuple[int, float] | None:
    """None when the models of ``sizes`` can anchor a task without reference scores
    (:data:`MIN_SHARED_MODELS` of them spanning :data:`MIN_SHARED_SPAN`); else how many there
    are and the ratio of their sizes."""
    n, span = len(sizes), (float(sizes.max() / sizes.min()) if len(sizes) else 0.0)
    return None if n >= MIN_SHARED_MODELS and span >= MIN_SHARED_SPAN else (n, span)


def unanchored_scores(loose: pd.DataFrame, models: pd.DataFrame, config: Config, source,
                      notices: list[str]) -> pd.DataFrame:
    """The scores of the tasks without reference scores, one row per score (model, task,
    score, k, n, chance, params, t, shared: whether the model has an effective size from the
    anchored tasks). Each task needs :data:`MIN_SHARED_MODELS` shared models whose sizes span
    :data:`MIN_SHARED_SPAN`: its curve is fitted to their effective sizes (sequential.py)."""
    columns = ["model", "family", "benchmark", "score", "k", "n", "chance", "params",
               "release_date", "t", "shared"]
    if loose.empty:
        return pd.DataFrame(columns=columns)
    tasks = sorted(loose.benchmark.unique())
    n_items, chance = items_and_chance(loose, tasks, source)
    out = loose.copy()
    if config.data.params == "active" and "params_active" in out.columns:
        out["params"] = out.params_active.fillna(out.params)
    out["n"] = out.benchmark.map(dict(zip(tasks, n_items))).astype(int)
    out["chance"] = out.benchmark.map(dict(zip(tasks, chance))).astype(float)
    out["k"] = np.rint(out.score * out.n).astype(int)
    out["t"] = config.model.months(out.release_date)
    targets = set(models.model[models.role == "target"])
    out["shared"] = out.model.isin(targets)
    for task in tasks:
        rows = out[out.benchmark == task]
        shared = rows[rows.shared]
        short = anchor_shortfall(shared.params)
        if short:
            n, span = short
            raise fail(source, f"{line_numbers(rows.line)}, column 'benchmark': task {show(task)} has no "
                               f"reference scores, and {n} of its models have effective "
                               f"sizes from the other tasks (sizes spanning {span:.1f}×); anchoring "
                               f"its curve needs at least {MIN_SHARED_MODELS} such models spanning "
                               f"{MIN_SHARED_SPAN:g}× in size; drop it (--benchmarks) or add "
                               "reference scores")
    only = sorted(set(out.model[~out.shared]))
    notices.append(f"{len(tasks)} task(s) without reference scores ({', '.join(tasks)}) are "
                   f"anchored by the models they share with the other tasks (a sequential cut)"
                   + (f"; {len(only)} model(s) seen only there get effective sizes from them "
                      "and stay out of the trend" if only else ""))
    return out[columns].sort_values(["benchmark", "model"], ignore_index=True)
