"""Shared, session-scoped fixtures for the end-to-end tests (CLI, run directory, simulator).

Every real fit here is tiny (12 simulated targets × 2 benchmarks, 2 chains × 60 draws after 60
tuning steps): the machine is small, and what these tests check is the plumbing, not the
posterior. Each fit still costs ~20 s (mostly JAX compilation), so fits are shared:

* ``lib_run``  — one library-level ``run.fit`` with a run directory; it also records the
  sampler's output so that later tests can *replay* it (``replay_sampler``) instead of sampling
  again when all they need is a realistic posterior (``--force``, interrupted writes);
* ``cli_run``  — one ``bayes-densing sample`` through typer's CliRunner.

The shared runs fit the joint model (``model.curves = "joint"``): the plumbing they check is the
same for both estimands and the joint costs half as much; ``test_cut.py`` runs the default, the
cut, through the command line. They set ``model.data_term = "off"`` (the simulator trains its references at D0, where
the term cancels anyway); ``test_run.py::test_posterior_predictive_with_data_term_on`` covers
the data term.
"""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace

import pytest

from bayes_densing.config import Config, load_config
from bayes_densing.inference.sample import select_device
from bayes_densing.model.simulate import simulate, write

# One XLA host device per chain is fixed by a process's first fit (inference.select_device);
# the tests fit with 2 and 4 chains in one worker, so every worker starts with 4
select_device("cpu", 4)

SIM = dict(n_models=12, n_benchmarks=2, seed=0)
N_REFERENCE = 8                      # simulate()'s default n_reference
SAMPLER = dict(chains=2, draws=60, tune=60, seed=0)

# the same settings as command-line options (without --data/--out/--allow-warnings)
SMALL_ARGS = ["--chains", "2", "--draws", "60", "--tune", "60", "--seed", "0", "--quiet",
              "--set", "model.data_term=off", "--set", "model.curves=joint"]


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """After each test file, drop JAX's in-memory compiled programs (the persistent cache
    keeps them on disk): each holds memory maps, and a process near Linux's limit of them
    segfaulted inside XLA (benchmarks/README.md, "Segfaults in one long process")."""
    yield
    import jax

    jax.clear_caches()


def _small_config(**sampler) -> Config:
    """A fresh default Config with the tiny sampler settings (override any with keywords)."""
    cfg = load_config("default")
    for key, value in {**SAMPLER, **sampler}.items():
        cfg.set(f"sampler.{key}", value)
    cfg.set("model.data_term", "off")
    cfg.set("model.curves", "joint")
    return cfg.validate()


def _leftovers(out: Path) -> list[Path]:
    """Hidden temporary directories that atomic_dir leaves beside ``out`` if it fails to clean up."""
    return sorted(out.parent.glob(f".{out.name}.partial-*")) + sorted(
        out.parent.glob(f".{out.name}.old-*"))


@pytest.fixture(scope="session")
def small_config():
    """Factory: ``small_config(seed=1)`` gives a fresh tiny-run Config."""
    return _small_config


@pytest.fixture(scope="session")
def small_args() -> list[str]:
    """The tiny sampler settings as ``bayes-densing sample`` options."""
    return list(SMALL_ARGS)


@pytest.fixture(scope="session")
def leftovers():
    """``leftovers(out)``: hidden .OUT.partial-* / .OUT.old-* siblings left beside ``out``."""
    return _leftovers


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bayes_densing")


@pytest.fixture(scope="session")
def synth(workdir) -> SimpleNamespace:
    """The small simulated dataset, written once: csv path, truth path, frame and truth dict."""
    df, truth = simulate(**SIM)
    csv, truth_path = write(df, truth, workdir / "synth.csv")
    return SimpleNamespace(csv=csv, truth_path=truth_path, df=df, truth=truth)


@pytest.fixture(scope="session")
def lib_run(workdir, synth) -> SimpleNamespace:
    """One real library-level fit, written to a run directory; its SampleResult is recorded."""
    import bayes_densing.run as run_mod

    real_sample = run_mod.sample
    recorded = {}

    def recording_sample(model, cfg, **kwargs):
        result = real_sample(model, cfg, **kwargs)
        recorded["sample"] = copy.deepcopy(result)   # the replays hand out copies of it
        return result

    cfg = _small_config()
    out = workdir / "lib_run"
    mp = pytest.MonkeyPatch()
    mp.setattr(run_mod, "sample", recording_sample)
    try:
        result = run_mod.fit(cfg, synth.csv, out=out, progressbar=False, figures=True)
    finally:
        mp.undo()
    assert "sample" in recorded, "run.fit no longer calls run.sample; update the fixtures"
    return SimpleNamespace(result=result, out=out, config=cfg, sample_result=recorded["sample"])


@pytest.fixture
def replay_sampler(lib_run, monkeypatch) -> dict:
    """Make run.fit reuse lib_run's posterior instead of sampling; returns a call counter."""
    import bayes_densing.run as run_mod

    calls = {"n": 0}

    def replay(model, cfg, **kwargs):
        calls["n"] += 1
        return copy.deepcopy(lib_run.sample_result)

    monkeypatch.setattr(run_mod, "sample", replay)
    return calls


@pytest.fixture
def no_sampling(monkeypatch) -> None:
    """Fail loudly if a test that should stop before sampling reaches the sampler."""
    import bayes_densing.run as run_mod

    def forbidden(*args, **kwargs):
        raise AssertionError("the sampler was called, but the input should have been refused first")

    monkeypatch.setattr(run_mod, "sample", forbidden)


@pytest.fixture(scope="session")
def cli_run(workdir, synth) -> SimpleNamespace:
    """One real ``bayes-densing sample --data synth.csv ... --allow-warnings`` (in-process),
    with its figures and report, as the command draws them by default."""
    from typer.testing import CliRunner

    from bayes_densing.cli.app import app

    out = workdir / "cli_run"
    args = ["sample", "--data", str(synth.csv), *SMALL_ARGS, "--out", str(out), "--allow-warnings"]
    result = CliRunner().invoke(app, args)
    return SimpleNamespace(result=result, out=out, args=args)


# --- small fits of the other model forms, shared by test_trends.py and test_plots.py ----------

def _tiny(**model) -> Config:
    """A fresh joint-model Config with 2 chains × 60 draws and the given ``model.*`` settings."""
    cfg = Config()
    cfg.set("model.curves", "joint")
    cfg.sampler.chains, cfg.sampler.draws, cfg.sampler.tune = 2, 60, 60
    for k, v in model.items():
        cfg.set(f"model.{k}", v)
    return cfg.validate()


def _synthetic(start="2023-03-01", months=18.0, n_models=14, seed=3, loss=False):
    """Simulated scores (2 benchmarks) as a frame ready for data.assemble."""
    import numpy as np
    import pandas as pd

    df, truth = simulate(n_models=n_models, n_benchmarks=2, seed=seed, start=start, months=months)
    df["release_date"] = pd.to_datetime(df.release_date)
    df["line"] = np.arange(len(df)) + 2
    if loss:  # observed losses for the reference models only
        ref = df.role == "reference"
        df["loss"] = np.where(ref, 0.5 + np.log(60 / df.params) / 10, np.nan)
    return df, truth


@pytest.fixture(scope="session")
def tiny():
    """Factory: ``tiny(trend="mean")`` gives a 2 × 60-draw Config with those model settings."""
    return _tiny


@pytest.fixture(scope="session")
def synthetic():
    """Factory: ``synthetic(start=..., loss=True)`` gives (scores frame, truth)."""
    return _synthetic


def _fit_and_write(df, cfg, out: Path):
    from bayes_densing.data import assemble
    from bayes_densing.run import fit

    data = assemble(df, cfg, source="synthetic")
    return fit(cfg, data=data, out=out, progressbar=False)


@pytest.fixture(scope="session")
def changepoint_fit(workdir) -> SimpleNamespace:
    """A changepoint-trend fit written to a run directory (targets on both sides of 2022-11-30)."""
    df, _ = _synthetic(start="2022-03-01", months=20.0, n_models=16)
    out = workdir / "changepoint_run"
    return SimpleNamespace(result=_fit_and_write(df, _tiny(trend="changepoint"), out), out=out)


@pytest.fixture(scope="session")
def loss_robust_fit(workdir) -> SimpleNamespace:
    """One fit of three options at once: observed losses, the robust likelihood and a free
    ceiling (each only adds parameters, so one small fit checks all three)."""
    df, _ = _synthetic(loss=True)
    out = workdir / "loss_robust_run"
    cfg = _tiny(likelihood="robust", ceiling="free")
    return SimpleNamespace(result=_fit_and_write(df, cfg, out), out=out)
