"""Assemble a checked long table into :class:`ScoreData` under a configuration.

The steps, in order: drop the models the configuration excludes, select the tasks, give each model
its role (reference or target), keep the targets in the date window, set tasks without reference
scores aside (anchored later, inference/sequential.py), and index models and scores.
"""

from __future__ import annotations

import difflib

import numpy as np
import pandas as pd

from bayes_densing.config import Config, DataConfig
from bayes_densing.data.anchoring import unanchored_scores
from bayes_densing.data.messages import fail, line_numbers
from bayes_densing.data.score_data import ScoreData
from bayes_densing.data.tasks import items_and_chance, select_tasks


def assemble(df: pd.DataFrame, config: Config, *, source: str, sha256: str = "",
             benchmarks=None, since=None, reference=None, notices=None) -> ScoreData:
    """Select, check and index a validated long table (from :func:`read_scores`)."""
    cfg = config.data
    benchmarks = list(cfg.benchmarks if benchmarks is None else benchmarks)
    since = cfg.since if since is None else since
    reference = cfg.reference if reference is None else reference
    notices = list(notices or [])
    df = _exclude(df.copy(), cfg, source, notices)
    present = sorted(df.benchmark.unique())
    if benchmarks:
        benchmarks = select_tasks(benchmarks, present, source)
        df = df[df.benchmark.isin(benchmarks)]
    else:
        benchmarks = present
    _set_roles(df, reference, source)
    df = _date_window(df, since, cfg.until, source)
    df, loose, benchmarks = _set_aside_unanchored(df, benchmarks, source)
    n_items, chance = items_and_chance(df, benchmarks, source)
    _set_sizes(df, cfg.params)
    models = _models_table(df, config)
    obs = _observations(df, models, benchmarks, n_items)
    return ScoreData(models=models, benchmarks=benchmarks, chance=np.asarray(chance, dtype=float),
                     n_items=np.asarray(n_items, dtype=int), obs=obs, source=source, sha256=sha256,
                     date_origin=config.model.date_origin, since=since or "", reference=reference or "",
                     notices=notices, warnings=_range_warnings(models, obs, chance),
                     unanchored=unanchored_scores(loose, models, config, source, notices))


def _flag(df: pd.DataFrame, col: str) -> pd.Series:
    return df[col].astype(str).str.lower().isin(["true", "1", "yes"])


def _exclude(df: pd.DataFrame, cfg: DataConfig, source: str, notices: list[str]) -> pd.DataFrame:
    """``df`` without the models ``cfg`` excludes (not base, specialists, by family or name)."""
    known_models = set(df.model)   # before any filter: data.exclude_models may name any of them
    if cfg.base_only and "is_base" in df.columns:
        drop = ~_flag(df, "is_base") & (df.is_base != "")
        if drop.any():
            notices.append(f"excluded {df.model[drop].nunique()} model(s) flagged is_base=false: "
                           f"{', '.join(sorted(df.model[drop].unique()))}")
            df = df[~drop]
    if cfg.exclude_specialists and "specialist" in df.columns:
        drop = _flag(df, "specialist")
        notices.append(f"excluded {df.model[drop].nunique()} specialist model(s)")
        df = df[~drop]
    if cfg.exclude_families:
        if "family" not in df.columns:
            raise fail(source, "column 'family' is needed to exclude families")
        df = df[~df.family.isin(cfg.exclude_families)]
    if cfg.exclude_models:
        unknown = [m for m in cfg.exclude_models if m not in known_models]
        if unknown:
            hint = difflib.get_close_matches(unknown[0], sorted(known_models), n=3)
            raise fail(source, f"column 'model': data.exclude_models names {', '.join(map(repr, unknown))}, "
                               f"not in the data; {'did you mean ' + ', '.join(hint) + '?' if hint else 'check the spelling against the model column'}")
        drop = df.model.isin(cfg.exclude_models)
        notices.append(f"excluded {df.model[drop].nunique()} model(s) by name: "
                       f"{', '.join(sorted(df.model[drop].unique()))}")
        df = df[~drop]
    return df


def _set_roles(df: pd.DataFrame, reference: str, source: str) -> None:
    """Each row's family (its model's name when blank) and role: the ``reference`` family's
    models are the reference, or else the file's role column says."""
    if "family" not in df.columns:
        df["family"] = df.model
    df["family"] = df.family.replace("", np.nan).fillna(df.model)
    if reference:
        families = sorted(df.family.unique())
        if reference not in families:
            raise fail(source, f"column 'family': reference family {reference!r} not found; "
                               f"give one of the families: {', '.join(families[:30])}{' …' if len(families) > 30 else ''}")
        df["role"] = np.where(df.family == reference, "reference", "target")
    elif "role" in df.columns and (df.role == "reference").any():
        df["role"] = df.role.replace("", "target")
    else:
        raise fail(source, "no reference models: give --reference FAMILY (a family column value) "
                           "or a 'role' column with 'reference' for the reference models")
    ref = df[df.role == "reference"]
    sizes = ref.drop_duplicates("model").params
    if sizes.nunique() < 2:
        raise fail(source, f"{line_numbers(ref.line)}, column 'params': the reference set needs at least 2 "
                           f"different sizes to fit the loss law; it has {sizes.nunique()} "
                           f"({', '.join(sorted(ref.model.unique()))}); choose a reference family "
                           "with several sizes")


def _date_window(df: pd.DataFrame, since: str, until: str, source: str) -> pd.DataFrame:
    """``df`` without the targets released before ``since`` or after ``until``; the targets left
    must span at least two dates."""
    targets = df.role == "target"
    if since:
        early = targets & (df.release_date < pd.Timestamp(since))
        df = df[~early]
    if until:
        late = (df.role == "target") & (df.release_date > pd.Timestamp(until))
        df = df[~late]
    tg = df[df.role == "target"]
    window = f" in the window {since or '…'} to {until or '…'}" if (since or until) else ""
    if tg.empty:
        raise fail(source, f"column 'release_date': no target models{window}; widen --since/--until")
    if tg.release_date.nunique() < 2:
        raise fail(source, f"{line_numbers(tg.line)}, column 'release_date': all target models share one "
                           f"release date ({tg.release_date.iloc[0]:%Y-%m-%d}); the trend over time "
                           "needs at least two dates")
    return df


def _set_aside_unanchored(df: pd.DataFrame, benchmarks: list[str], source: str):
    """Split off the tasks without a reference score (anchored later by the shared models,
    inference/sequential.py): returns the anchored scores, the others, and the anchored tasks."""
    anchored = [b for b in benchmarks if (df[df.benchmark == b].role == "reference").any()]
    if not anchored:
        raise fail(source, f"column 'benchmark': no benchmark has a score from a reference "
                           f"model ({', '.join(benchmarks)}), so none can be mapped to effective "
                           "sizes; add reference scores, or choose another reference family")
    unanchored_tasks = [b for b in benchmarks if b not in anchored]
    loose = df[df.benchmark.isin(unanchored_tasks)].copy()
    df = df[df.benchmark.isin(anchored)]
    return df, loose, anchored


def _set_sizes(df: pd.DataFrame, params: str) -> None:
    """Keep total and active sizes; ``params`` (the configuration's) chooses the one for density."""
    df["params_total"] = df.params
    if "params_active" not in df.columns:
        df["params_active"] = df.params
    df["params_active"] = df.params_active.fillna(df.params)
    if params == "active":
        df["params"] = df.params_active


def _models_table(df: pd.DataFrame, config: Config) -> pd.DataFrame:
    """One row per model: references by size, then targets by date, with ``t`` in months."""
    cols = ["model", "family", "params", "params_total", "params_active", "tokens",
            "release_date", "role"]
    models = df.drop_duplicates("model")[cols]
    models = pd.concat([models[models.role == "reference"].sort_values(["params", "model"]),
                        models[models.role == "target"].sort_values(["release_date", "model"])],
                       ignore_index=True)
    models["t"] = config.model.months(models.release_date)
    return models


def _observations(df: pd.DataFrame, models: pd.DataFrame, benchmarks: list[str],
                  n_items: list[int]) -> pd.DataFrame:
    """One row per score, indexed into ``models`` and ``benchmarks``, as ``k`` of ``n`` items."""
    index = {m: i for i, m in enumerate(models.model)}
    bindex = {b: j for j, b in enumerate(benchmarks)}
    obs = pd.DataFrame({"model_idx": df.model.map(index).to_numpy(),
                        "bench_idx": df.benchmark.map(bindex).to_numpy(),
                        "score": df.score.to_numpy(),
                        "loss": df["loss"].to_numpy() if "loss" in df.columns else np.nan})
    obs = obs.sort_values(["model_idx", "bench_idx"], ignore_index=True)
    obs["n"] = np.asarray(n_items)[obs.bench_idx]
    obs["k"] = np.rint(obs.score * obs.n).astype(int)
    return obs


def _range_warnings(models: pd.DataFrame, obs: pd.DataFrame, chance: list[float]) -> list[str]:
    """What is legal but out of range: targets far larger than the references, scores below chance."""
    warnings: list[str] = []
    ref_max = models.params[models.role == "reference"].max()
    big = models[(models.role == "target") & (models.params > 10 * ref_max)]
    if len(big):
        warnings.append(f"{len(big)} target model(s) are over 10× the largest reference model "
                        f"({ref_max:g}B): {', '.join(big.model[:5])}; their effective sizes extrapolate")
    below = obs[obs.score < np.asarray(chance)[obs.bench_idx]]
    if len(below):
        warnings.append(f"{len(below)} score(s) are below their benchmark's chance level "
                        "(accepted: the likelihood allows it)")
    return warnings
