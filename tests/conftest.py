"""Shared, session-scoped fixtures for the end-to-end tests (CLI, run directory, simulator).

Every real fit here is tiny (12 simulated targets × 2 benchmarks, 2 chains × 60 draws after 60
tuning steps): the machine is small, and what these tests check is the plumbing, not the
posterior. Each fit still costs ~20 s (mostly JAX compilation), so fits are shared:

* ``lib_run``  — one library-level ``run.fit`` with a run directory; it also records the
  sampler's output so that later tests can *replay* it (``replay_sampler``) instead of sampling
  again when all they need is a realistic posterior (``--force``, interrupted writes);
* ``cli_run``  — one ``bayes-densing sample`` through typer's CliRunner.

The shared runs set ``model.data_term = "off"`` (the simulator trains its references at D0, where
the term cancels anyway); ``test_run.py::test_posterior_predictive_with_data_term_on`` covers
the data term.
"""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace

import pytest

from bayes_densing.config import Config, load_config
from bayes_densing.simulate import simulate, write

SIM = dict(n_models=12, n_benchmarks=2, seed=0)
N_REFERENCE = 8                      # simulate()'s default n_reference
SAMPLER = dict(chains=2, draws=60, tune=60, seed=0)

# the same settings as command-line options (without --data/--out/--allow-warnings)
SMALL_ARGS = ["--chains", "2", "--draws", "60", "--tune", "60", "--seed", "0", "--quiet",
              "--set", "model.data_term=off"]


def _small_config(**sampler) -> Config:
    """A fresh default Config with the tiny sampler settings (override any with keywords)."""
    cfg = load_config("default")
    for key, value in {**SAMPLER, **sampler}.items():
        cfg.set(f"sampler.{key}", value)
    cfg.set("model.data_term", "off")
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
        recorded["sample"] = copy.deepcopy(result)   # before fit() adds groups to its idata
        return result

    cfg = _small_config()
    out = workdir / "lib_run"
    mp = pytest.MonkeyPatch()
    mp.setattr(run_mod, "sample", recording_sample)
    try:
        result = run_mod.fit(cfg, synth.csv, out=out, progressbar=False)
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
    """One real ``bayes-densing sample --data synth.csv ... --allow-warnings`` (in-process)."""
    from typer.testing import CliRunner

    from bayes_densing.cli import app

    out = workdir / "cli_run"
    args = ["sample", "--data", str(synth.csv), *SMALL_ARGS, "--out", str(out), "--allow-warnings"]
    result = CliRunner().invoke(app, args)
    return SimpleNamespace(result=result, out=out, args=args)
