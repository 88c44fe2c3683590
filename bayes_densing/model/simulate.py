"""Synthetic scores from the generative model, with the truth written beside them.

The scores are drawn through the same functions the model uses (``curves.score_probability`` →
``laws``), so a fit to simulated data tests the inference, not a second copy of the formulas.

>>> df, truth = simulate(n_models=10, n_benchmarks=2, seed=0)
>>> sorted(df.role.unique()), round(truth["doubling_months"], 2)
(['reference', 'target'], 3.3)
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_densing.model import laws
from bayes_densing.data.registry import REGISTRY
from bayes_densing.config import Config
from bayes_densing.data import ScoreData
from bayes_densing.model.curves import score_probability
from bayes_densing.model.likelihood import draw_counts, obs_concentration

DEFAULT_BENCHMARKS = ("mmlu", "arc_challenge", "hellaswag", "winogrande", "gsm8k", "bbh",
                      "math", "humaneval", "mmlu_pro", "gpqa", "mbpp", "musr")
REFERENCE_SIZES = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 72.0)


def simulate(n_models: int = 60, n_benchmarks: int = 5, doubling_months: float = 3.3, *,
             seed: int = 0, n_reference: int = 8, start: str = "2023-03-01", months: float = 18.0,
             sigma_v: float = 0.15, sigma_u: float = 0.5, config: Config | None = None
             ) -> tuple[pd.DataFrame, dict]:
    """Simulate a long scores table (with a ``role`` column) and the parameters that made it.

    Targets: sizes log-uniform in 0.5–70B, release dates uniform over ``months`` from
    ``start``, log densities from the stochastic frontier with slope ln 2 / doubling_months.
    Benchmarks: the first ``n_benchmarks`` of a fixed list (registry chance and item counts).
    """
    if not 1 <= n_benchmarks <= len(DEFAULT_BENCHMARKS):
        raise ValueError(f"n_benchmarks must be in 1..{len(DEFAULT_BENCHMARKS)}")
    if n_models < 3:
        raise ValueError("n_models must be at least 3")
    if not 2 <= n_reference <= len(REFERENCE_SIZES):
        raise ValueError(f"n_reference must be in 2..{len(REFERENCE_SIZES)}")
    config = config or Config()
    rng = np.random.default_rng(seed)
    benches = list(DEFAULT_BENCHMARKS[:n_benchmarks])
    nb = len(benches)

    ref_sizes = np.array(REFERENCE_SIZES)[np.linspace(0, len(REFERENCE_SIZES) - 1,
                                                      n_reference).round().astype(int)]
    origin = pd.Timestamp(config.model.date_origin)
    day0 = pd.Timestamp(start)
    offsets = np.sort(rng.uniform(0, months * laws.DAYS_PER_MONTH, n_models)).round()
    dates = day0 + pd.to_timedelta(offsets, unit="D")
    t = ((dates - origin).days / laws.DAYS_PER_MONTH).to_numpy(dtype=float)
    params = np.exp(rng.uniform(math.log(0.5), math.log(70.0), n_models)).round(2)

    A = laws.LN2 / doubling_months
    B_centre = 0.0
    v = rng.normal(0.0, sigma_v, n_models)
    u = np.abs(rng.normal(0.0, sigma_u, n_models))
    log_density = laws.trend_mean(t - t.mean(), A, B_centre) + v - u
    eta = np.log(params) + log_density
    truth_params, phi_reference, phi_target = _curve_truth(rng, nb, config)

    tgt_names = [f"sim-{i:03d}-{p:g}b" for i, p in enumerate(params)]
    targets = pd.DataFrame({"model": tgt_names, "params": params, "release_date": dates, "t": t})
    models = _models_table(ref_sizes, targets, day0, config)
    data = _score_data(models, benches, config)
    obs = data.obs
    sim_params = {k: np.asarray(val, dtype=float)[None] for k, val in truth_params.items()}
    sim_params["log_effective_size"] = eta[None]
    p, _ = score_probability(sim_params, data, config, xp=np)
    n = data.n_items[obs.bench_idx]
    k = draw_counts(rng, n, p[0], obs_concentration(phi_reference, phi_target, data, xp=np))

    rows = models.iloc[obs.model_idx].reset_index(drop=True)
    df = pd.DataFrame({
        "model": rows.model, "family": rows.family, "params": rows.params, "tokens": rows.tokens,
        "release_date": rows.release_date.dt.strftime("%Y-%m-%d"), "role": rows.role,
        "benchmark": np.asarray(benches)[obs.bench_idx], "score": k / n,
    })
    truth = {
        "seed": seed, "doubling_months": doubling_months, "A": A,
        "B": B_centre - A * float(t.mean()), "sigma_v": sigma_v, "sigma_u": sigma_u,
        "benchmarks": benches, "phi_reference": phi_reference.tolist(),
        "phi_target": phi_target.tolist(),
        **{k: np.asarray(val).tolist() for k, val in truth_params.items()},
        "reference_family": "SimRef", "d0": config.model.d0,
        "targets": {name: {"log_density": float(ld), "log_effective_size": float(e)}
                    for name, ld, e in zip(tgt_names, log_density, eta)},
    }
    return df, truth


def _curve_truth(rng: np.random.Generator, nb: int, config: Config) -> tuple[dict, np.ndarray, np.ndarray]:
    """The benchmarks' true curve parameters and the two families' concentrations."""
    truth_params = {
        "alpha": 0.3 * np.exp(0.15 * rng.normal(size=nb)),
        "z_centre": rng.normal(-0.3, 0.5, nb),
        "z_gain": rng.uniform(2.0, 4.5, nb),
        "ceiling_frac": (rng.uniform(0.85, 1.0, nb) if config.model.ceiling == "free"
                         else np.ones(nb)),
        "b": 0.5, "beta": 0.28,
    }
    return truth_params, rng.uniform(300.0, 1000.0, nb), rng.uniform(60.0, 200.0, nb)


def _models_table(ref_sizes: np.ndarray, targets: pd.DataFrame, day0: pd.Timestamp,
                  config: Config) -> pd.DataFrame:
    """The references (released a month before the first target) and the targets."""
    n_ref, n_models = len(ref_sizes), len(targets)
    models = pd.DataFrame({
        "model": [f"ref-{s:g}b" for s in ref_sizes] + list(targets.model),
        "family": ["SimRef"] * n_ref + [f"SimFam{i % 7}" for i in range(n_models)],
        "params": np.concatenate([ref_sizes, targets.params]),
        # references trained at D0: the data term b·D^-β is then the same constant for every
        # model and cancels, so recovery tests the identified part of the model
        "tokens": np.concatenate([np.full(n_ref, config.model.d0), np.full(n_models, np.nan)]),
        "release_date": [day0 - pd.Timedelta(days=30)] * n_ref + list(targets.release_date),
        "role": ["reference"] * n_ref + ["target"] * n_models,
    })
    models["params_total"] = models["params_active"] = models.params
    models["t"] = np.concatenate([np.zeros(n_ref), targets.t])
    return models


def _score_data(models: pd.DataFrame, benches: list[str], config: Config) -> ScoreData:
    """Every model on every benchmark, with the registry's chance levels and item counts."""
    nb = len(benches)
    chance = np.array([REGISTRY[b].chance for b in benches])
    n_items = np.array([REGISTRY[b].n_items for b in benches])
    mi, bj = np.meshgrid(np.arange(len(models)), np.arange(nb), indexing="ij")
    obs = pd.DataFrame({"model_idx": mi.ravel(), "bench_idx": bj.ravel(), "loss": np.nan})
    return ScoreData(models=models, benchmarks=benches, chance=chance, n_items=n_items, obs=obs,
                     source="simulated", sha256="", date_origin=config.model.date_origin)


def write(df: pd.DataFrame, truth: dict, out: str | Path) -> tuple[Path, Path]:
    """Write ``out`` (CSV) and ``out`` with suffix ``.truth.json`` beside it."""
    from bayes_densing.results.rundir import write_atomic

    out = Path(out)
    truth_path = out.with_suffix(".truth.json")
    write_atomic(out, df.to_csv(index=False))
    try:
        write_atomic(truth_path, json.dumps(truth, indent=2))
    except BaseException:
        out.unlink(missing_ok=True)     # a CSV without its truth would be half the output
        raise
    return out, truth_path


def two_sources(seed: int = 0, *, n_models: int = 30, n_shared: int = 8, n_only: int = 6,
                config: Config | None = None) -> tuple[pd.DataFrame, dict]:
    """A dataset of two sources (``source`` column): source ``h1`` (three benchmarks, with
    reference scores) and source ``h2`` (one more benchmark, without reference scores: its
    task has to be anchored by the models it shares with ``h1``, ``sequential.py``).
    ``n_shared`` targets, spread evenly in size, are scored by both sources, ``n_only`` others
    by ``h2`` alone. Returns the table and the truth of :func:`simulate`, with ``shared`` and
    ``only`` (the models' names) added."""
    df, truth = simulate(n_models=n_models, n_benchmarks=4, seed=seed, config=config)
    second = DEFAULT_BENCHMARKS[3]
    rng = np.random.default_rng([seed, 2])
    order = (df[df.role == "target"].drop_duplicates("model").sort_values("params")
             .model.to_numpy())
    shared = list(order[np.linspace(0, len(order) - 1, n_shared).round().astype(int)])
    only = sorted(rng.permutation([m for m in order if m not in shared])[:n_only])
    on_second = df.benchmark == second
    keep = np.where(on_second, df.model.isin(shared + only), ~df.model.isin(only))
    df = df[keep].copy()
    df["source"] = np.where(df.benchmark == second, "h2", "h1")
    return df.reset_index(drop=True), {**truth, "shared": shared, "only": list(only)}
