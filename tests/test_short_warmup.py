"""A warm-up too short to estimate the metric (issue: `sample --draws 10 --tune 10 --chains 1`
on 3,000 targets crashed in the posterior predictive with "p contains NaNs").

With ten draws a chunk is one iteration, so the first metric window held one draw of one chain
and its variance divided by n − 1 = 0. Now: a window too short to estimate the metric keeps the
previous one and carries over into the next (``dense_nuts.enough``/``estimated``), a ``--tune``
too short for the schedule to adapt at all is refused (``config.MIN_TUNE``), and draws that are
not finite anyway become failed diagnostics naming the chain, never a traceback."""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import arviz as az
import numpy as np
import pytest

from bayes_densing.inference import bridge
from bayes_densing.sampling import conditional_metric, dense_nuts
from bayes_densing.config import MIN_TUNE, ConfigError, SamplerConfig
from bayes_densing.inference.sample import diagnose
from bayes_densing.results import Run


def _estimates(tune: int, draws: int, chains: int, layout: str) -> int:
    """How many metric estimates the warm-up of ``tune`` iterations makes (dense_nuts's
    schedule: chunks of the draws' length, windows that double, too-short ones carried over)."""
    length = dense_nuts.chunk_length(draws)
    updates = dense_nuts.metric_updates(dense_nuts.warmup_chunks(tune, length))
    return sum(dense_nuts.estimated(updates, length, chains, layout))


# --- the schedule and the minimum --tune --------------------------------------------------------

@pytest.mark.parametrize("layout", ["dense", "conditional"])
def test_min_tune_is_the_least_tune_whose_warm_up_estimates_the_metric_twice(layout):
    """config.MIN_TUNE, derived from the schedule: with one chain, every number of draws gets a
    variance estimate and then a covariance estimate, each from dense_nuts.MIN_DRAWS draws or
    more; one iteration less leaves some number of draws with fewer. (Above 2,000 draws a chunk
    is 100 iterations or more, and every window at least one chunk.)"""
    def worst(tune):
        return min(_estimates(tune, draws, 1, layout) for draws in range(1, 2001))

    assert worst(MIN_TUNE) >= 2
    assert worst(MIN_TUNE - 1) < 2
    assert dense_nuts.chunk_length(2001) >= 100 >= dense_nuts.MIN_DRAWS


def test_the_issue_s_warm_up_carries_its_short_windows_over():
    # --draws 10 --chains 1: chunks of one iteration, windows of 1, 2, 4 and 12 iterations
    length = dense_nuts.chunk_length(10)
    updates = dense_nuts.metric_updates(dense_nuts.warmup_chunks(MIN_TUNE, length))
    assert (length, updates) == (1, [1, 3, 7, 19])
    assert dense_nuts.estimated(updates, length, 1, "dense") == [False, False, True, True]
    # the conditional metric needs 4 draws of each chain: 2 chains × 3 iterations are too few
    assert dense_nuts.estimated([1, 3, 7, 18], 3, 2, "conditional") == [False, True, True, True]
    assert dense_nuts.estimated([1, 3, 7, 18], 3, 2, "dense") == [True] * 4


@pytest.mark.parametrize("chains, draws, tune", [(4, 1000, 1000), (2, 60, 60), (1, 1000, 300)])
def test_normal_warm_ups_estimate_at_every_window_as_before(chains, draws, tune):
    """The default fit, the tests' small fits and a warm-started subset: no window too short,
    so their schedule (and their draws, for the same seed) is what it was."""
    length = dense_nuts.chunk_length(draws)
    updates = dense_nuts.metric_updates(dense_nuts.warmup_chunks(tune, length))
    assert dense_nuts.estimated(updates, length, chains, "dense") == [True] * len(updates)


def test_a_too_short_tune_is_refused_with_the_minimum(small_config):
    with pytest.raises(ConfigError, match=rf"^--tune 3 is too short: the warm-up needs at least "
                                          rf"{MIN_TUNE} iterations"):
        small_config(tune=3)
    with pytest.raises(ConfigError, match=f"at least {MIN_TUNE} "):
        small_config(tune=MIN_TUNE - 1, chains=4, draws=1000)
    assert small_config(tune=MIN_TUNE).sampler.tune == MIN_TUNE
    # the other samplers' (and NumPyro's diagonal) warm-ups are their own
    assert small_config(tune=3, sampler="pymc").sampler.tune == 3
    assert small_config(tune=3, mass_matrix="diag").sampler.tune == 3


def test_the_console_script_refuses_a_too_short_tune_and_writes_nothing(synth, tmp_path):
    exe = Path(sys.executable).with_name("bayes-densing")
    assert exe.exists(), "the bayes-densing console script is not installed"
    out = tmp_path / "run"
    proc = subprocess.run([str(exe), "sample", "--data", str(synth.csv), "--chains", "1",
                           "--draws", "10", "--tune", "3", "--quiet", "--out", str(out)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"error: --tune 3 is too short: the warm-up needs at least {MIN_TUNE} "
                     "iterations to adapt the sampler's metric (sampler.tune; the default is "
                     f"{SamplerConfig.tune})"], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert list(tmp_path.iterdir()) == []


# --- the metric's estimators --------------------------------------------------------------------

def test_a_variance_from_one_draw_is_refused_not_nan():
    one = np.ones((1, 3))
    for estimator in (dense_nuts.shrunk_variance, dense_nuts.shrunk_covariance):
        with pytest.raises(ValueError, match="at least 2 draws, got 1"):
            estimator(one)
    two = np.array([[0.0, 1.0, 2.0], [1.0, 1.0, 4.0]])
    assert np.all(np.isfinite(dense_nuts.shrunk_variance(two)))
    assert np.all(np.isfinite(dense_nuts.shrunk_covariance(two)))


@pytest.fixture(scope="module")
def samplers():
    """A dense, a diagonal and a conditional Sampler of a model with 2 globals and 4 latents
    (nothing is compiled until a run)."""
    import pymc as pm

    with pm.Model(coords={"target": range(4)}) as model:
        mu = pm.Normal("mu")
        pm.Normal("sigma_log", 0.0, 1.0)
        pm.Normal("latent", mu, 1.0, dims="target")
    return {layout: bridge.sampler(model, SamplerConfig(chains=2, draws=10, tune=MIN_TUNE,
                                                            mass_matrix=layout))
            for layout in ("dense", "diag", "conditional")}


def _finite(metric) -> bool:
    return all(np.all(np.isfinite(a)) for a in (metric if isinstance(metric, tuple) else (metric,)))


@pytest.mark.parametrize("layout", ["dense", "diag", "conditional"])
@pytest.mark.parametrize("chains, draws", [(1, 1), (1, 2), (2, 2)])
def test_a_window_of_one_or_two_draws_keeps_the_previous_metric(samplers, layout, chains, draws):
    sampler = samplers[layout]
    window = np.random.default_rng(0).normal(size=(chains, draws, sampler.d))
    previous = sampler.metric(np.random.default_rng(1).normal(size=(2, 50, sampler.d)))
    assert _finite(previous) and previous is not sampler.metric(window)
    assert sampler.metric(window, previous=previous) is previous
    for scales_only in (True, False):
        kept = sampler.metric(window, scales_only=scales_only)       # no previous: the identity
        assert _finite(kept)
        for a, b in zip(*(m if isinstance(m, tuple) else (m,) for m in (kept, sampler.identity()))):
            np.testing.assert_array_equal(a, b)


def test_the_conditional_metric_needs_four_draws_of_each_chain(samplers):
    """The tests' small fits (2 chains, chunks of 3 iterations) with the conditional metric gave
    NaN draws: its first window's bulk ESS, and so its regression, was NaN."""
    sampler = samplers["conditional"]
    window = np.random.default_rng(2).normal(size=(2, 3, sampler.d))
    raw = conditional_metric.estimate(window.reshape(-1, sampler.d), sampler.d_global, False,
                                      conditional_metric.effective_draws(window, sampler.d_global,
                                                                         sampler.ess))
    assert not _finite(raw)                               # what the window used to give
    previous = sampler.identity()
    assert sampler.metric(window, previous=previous) is previous
    longer = np.random.default_rng(2).normal(size=(2, 4, sampler.d))
    new = sampler.metric(longer, previous=previous)
    assert new is not previous and _finite(new)


@pytest.mark.parametrize("layout", ["dense", "diag", "conditional"])
def test_a_non_finite_estimate_keeps_the_previous_metric(samplers, layout):
    sampler = samplers[layout]
    window = np.random.default_rng(3).normal(size=(2, 10, sampler.d))
    assert sampler.metric(window) is not None and _finite(sampler.metric(window))
    window[1, 4, 0] = np.inf
    previous = sampler.identity()
    assert sampler.metric(window, previous=previous) is previous


# --- real fits ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def short_fit(synth, small_config, tmp_path_factory):
    """The issue's settings on the small data: one chain, ten draws, the shortest --tune; with
    the metric and the tree cap that each stretch of the warm-up started with."""
    from bayes_densing.run import fit

    starts = []
    real_run, real_start = dense_nuts.Sampler.run, dense_nuts.Sampler.start

    def run(self, *args, **kwargs):
        self.recording = True        # (not the starting points' checks, which start too)
        try:
            return real_run(self, *args, **kwargs)
        finally:
            self.recording = False

    def start(self, keys, z, eps, inv_mass, args, capped=0):
        if getattr(self, "recording", False):
            starts.append((np.array(inv_mass, copy=True), capped))
        return real_start(self, keys, z, eps, inv_mass, args, capped)

    out = tmp_path_factory.mktemp("short") / "run"
    cfg = small_config(chains=1, draws=10, tune=MIN_TUNE)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dense_nuts.Sampler, "run", run)
        mp.setattr(dense_nuts.Sampler, "start", start)
        result = fit(cfg, synth.csv, out=out, progressbar=False)
    return result, out, starts


def test_the_shortest_warm_up_with_one_chain_gives_finite_draws(short_fit):
    result, out, _ = short_fit
    post = result.idata.posterior
    assert post.sizes["chain"] == 1 and post.sizes["draw"] == 10
    for name, x in post.data_vars.items():
        assert np.all(np.isfinite(x.values)), name
    assert result.idata.posterior_predictive["correct"].dtype.kind == "i"
    d = result.diagnostics
    assert d["non_finite_chains"] == [] and not any("non-finite" in p for p in d["problems"])
    assert (out / "diagnostics.json").exists()
    assert "max R-hat n/a (one chain)" in result.summary           # one chain: why no R-hat
    assert "note: R-hat is not computed with one chain" in result.summary


def test_the_shortest_warm_up_starts_every_stretch_with_a_finite_metric(short_fit):
    """Windows of 1, 2, 4 and 12 iterations: the first two (1 and 3 draws) keep the identity,
    the variances come from the first 7 draws and the covariance from the next 12; the trees
    stay capped until the dense metric. (A variance from the one draw of the first window was
    NaN, and the chain then moved with a NaN metric.)"""
    result, _, starts = short_fit
    assert result.diagnostics["mass_matrix"] == "dense"
    metrics = [m for m, _ in starts]
    assert all(np.all(np.isfinite(m)) for m in metrics)
    identity = np.eye(metrics[0].shape[0])
    assert len(starts) == 5 and all(np.array_equal(m, identity) for m in metrics[:3])
    assert not np.array_equal(metrics[3], identity)
    assert np.array_equal(metrics[3], np.diag(np.diag(metrics[3])))         # the scales
    assert not np.array_equal(metrics[4], np.diag(np.diag(metrics[4])))     # then dense
    assert [c for _, c in starts] == [1, 2, 4, 12, 0]


@pytest.fixture(scope="module")
def conditional_fit(synth, small_config):
    """The tests' small fit (2 chains × 60 draws after 60 warm-up) with the conditional
    metric, whose first window (3 iterations a chain) gave NaN draws."""
    from bayes_densing.data import load
    from bayes_densing.run import fit

    cfg = small_config(mass_matrix="conditional")
    data = load(cfg, synth.csv)
    return fit(cfg, data=data, progressbar=False), cfg, data


def test_the_conditional_metric_s_small_fit_gives_finite_draws(conditional_fit):
    result, _, _ = conditional_fit
    assert result.diagnostics["mass_matrix"] == "conditional"
    for name, x in result.idata.posterior.data_vars.items():
        assert np.all(np.isfinite(x.values)), name
    assert result.diagnostics["non_finite_chains"] == []


def _poisoned(sampled, chain: int, name: str | None):
    """A copy of a fit's sampler output with every draw of ``name`` (None: of every variable)
    in ``chain`` NaN."""
    bad = copy.deepcopy(sampled)
    post = bad.idata.posterior
    for v in post.data_vars if name is None else [name]:
        post[v].values[chain] = np.nan
    return bad


def test_non_finite_draws_fail_the_diagnostics_and_the_run_is_still_written(conditional_fit,
                                                                            tmp_path):
    from bayes_densing.run import fit

    result, cfg, data = conditional_fit
    out = tmp_path / "run"
    bad = fit(cfg, data=data, out=out, progressbar=False,
              draws=_poisoned(result.sampled, 1, "log_effective_size"))
    expected = ("non-finite draws in chain 1 (log_effective_size): the sampler failed; "
                "re-run with more --tune")
    assert expected in bad.diagnostics["problems"]
    assert bad.diagnostics["non_finite_chains"] == [1]
    assert json.loads((out / "diagnostics.json").read_text())["problems"][0] == expected
    assert expected in bad.summary
    # the posterior predictive: no counts where p is NaN (chain 1's targets), counts elsewhere
    k = bad.idata.posterior_predictive["correct"].values
    target = bad.data.obs.model_idx.to_numpy() >= bad.data.n_ref
    assert np.all(np.isnan(k[1][:, target])) and np.all(np.isfinite(k[1][:, ~target]))
    assert np.all(np.isfinite(k[0]))
    # the tables take chain 0's draws
    assert len(bad.models) == len(result.models) and len(bad.trend) == len(result.trend)
    tg = bad.models[bad.models.role == "target"]
    assert np.all(np.isfinite(tg[["effective_params_low", "effective_params_high"]].to_numpy()))
    # a whole failed chain: every variable, the first five named
    n_vars = len(result.idata.posterior.data_vars)
    whole = fit(cfg, data=data, progressbar=False, draws=_poisoned(result.sampled, 1, None))
    first = whole.diagnostics["problems"][0]
    assert first.startswith("non-finite draws in chain 1 (") and first.count(",") == 5
    assert first.endswith(f", … ({n_vars} variables)): the sampler failed; re-run with more --tune")
    assert np.all(np.isnan(whole.idata.posterior_predictive["correct"].values[1]))


def test_non_finite_draws_exit_3_through_the_command_line(conditional_fit, synth, small_args,
                                                          tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import bayes_densing.run as run_mod
    from bayes_densing.cli.app import app

    result, _, _ = conditional_fit
    monkeypatch.setattr(run_mod, "sample", lambda *a, **k: _poisoned(result.sampled, 0, "A"))
    out = tmp_path / "run"
    cli = CliRunner().invoke(app, ["sample", "--data", str(synth.csv), *small_args,
                                   "--set", "sampler.mass_matrix=conditional", "--no-figures",
                                   "--out", str(out)])
    assert cli.exit_code == 3, (cli.output, cli.exception)
    assert cli.exception is None or isinstance(cli.exception, SystemExit)
    assert "non-finite draws in chain 0 (A)" in cli.stdout
    assert "error: the sampler's diagnostics failed" in cli.stderr
    problems = json.loads((out / "diagnostics.json").read_text())["problems"]
    assert any(p.startswith("non-finite draws in chain 0 (A)") for p in problems)


def test_a_chain_of_nothing_but_nan_is_named_not_a_traceback():
    """One chain, every draw NaN: R-hat and ESS are NaN for every variable (diagnose used to
    stop with StopIteration looking for the worst of them)."""
    nan = np.full((1, 100), np.nan)
    idata = az.from_dict({"posterior": {"A": nan, "B": nan.copy()},
                          "sample_stats": {"diverging": np.zeros((1, 100), bool),
                                           "energy": np.random.default_rng(0).normal(size=(1, 100))}})
    d = diagnose(idata, ["A", "B"])
    assert d["problems"][0] == ("non-finite draws in chain 0 (A, B): the sampler failed; "
                                "re-run with more --tune")
    assert math.isnan(d["max_rhat"]) and d["max_rhat_var"] == ""
    two = az.from_dict({"posterior": {"A": np.stack([np.arange(100.0), np.full(100, np.inf)]),
                                      "B": np.zeros((2, 100))},
                        "sample_stats": {"diverging": np.zeros((2, 100), bool)}})
    assert diagnose(two, ["A", "B"])["non_finite_chains"] == [1]


# --- the issue itself ---------------------------------------------------------------------------

@pytest.mark.slow
def test_the_issue_3000_targets_one_chain_ten_draws_runs_to_the_end(tmp_path):
    """`bayes-densing sample --draws 10 --tune MIN_TUNE --chains 1 --no-figures` on 3,000
    simulated targets × 2 benchmarks (the conditional metric), through the console script: it
    ends with exit 3 (ten draws fail the ESS threshold), finite draws, no traceback. (With
    figures it stops in diagnostics.ppc_figure: test_the_ppc_figure_of_fewer_than_60_draws below.)"""
    from bayes_densing.model.simulate import simulate, write

    df, truth = simulate(n_models=3000, n_benchmarks=2, seed=0)
    csv, _ = write(df, truth, tmp_path / "synth3000.csv")
    exe = Path(sys.executable).with_name("bayes-densing")
    out = tmp_path / "run"
    start = time.perf_counter()
    proc = subprocess.run([str(exe), "sample", "--data", str(csv), "--draws", "10", "--tune",
                           str(MIN_TUNE), "--chains", "1", "--quiet", "--no-figures",
                           "--out", str(out)],
                          capture_output=True, text=True, timeout=1200,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    seconds = time.perf_counter() - start
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode == 3, (proc.stdout, proc.stderr)
    diag = json.loads((out / "diagnostics.json").read_text())
    assert diag["mass_matrix"] == "conditional" and diag["non_finite_chains"] == []
    idata = az.from_netcdf(str(out / "posterior.nc"))
    for name, x in idata.posterior.data_vars.items():
        assert np.all(np.isfinite(x.values)), name
    print(f"3,000 targets, 1 chain × (10 + {MIN_TUNE}): {seconds:.0f} s")


# --- figures of such runs ----------------------------------------------------------------------

def _run(result) -> Run:
    return Run(idata=result.idata, models=result.models, trend=result.trend,
               diagnostics=result.diagnostics, config=result.config)


def test_every_figure_of_a_ten_draw_run(short_fit, tmp_path):
    """A run of 1 chain × 10 draws has fewer draws than the 60 replicates the PPC shows."""
    from bayes_densing.figures.diagnostics import ppc_figure
    from bayes_densing.figures.run_set import run_figures

    index = run_figures(_run(short_fit[0]), tmp_path / "figures")
    assert all((tmp_path / e["png"]).stat().st_size > 10_000 for e in index if "png" in e)
    ppc = ppc_figure(_run(short_fit[0]))
    assert max(len(ax.lines) for ax in ppc.axes) >= 10        # the 10 replicates are drawn


def test_every_figure_of_a_run_with_a_failed_chain(conditional_fit, tmp_path):
    from bayes_densing.figures.diagnostics import trace_figure
    from bayes_densing.figures.run_set import run_figures
    from bayes_densing.run import fit

    result, cfg, data = conditional_fit
    bad = fit(cfg, data=data, progressbar=False, draws=_poisoned(result.sampled, 1, None))
    index = run_figures(_run(bad), tmp_path / "figures")
    assert all((tmp_path / e["png"]).stat().st_size > 10_000 for e in index if "png" in e)
    trace = trace_figure(_run(bad))
    assert "chain 1 left out: non-finite draws" in trace._suptitle.get_text().replace("\n", " ")
