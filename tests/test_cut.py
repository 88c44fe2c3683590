"""Cut inference (``cut.py``): the nested MCMC samples the cut distribution.

On a small simulated design (12 targets, 3 benchmarks), from one curve fit:
(a) with the trend fixed, each target's draws match a 1-D quadrature mixture over the same
    curve draws; (b) doubling the inner length leaves the pooled quantiles unchanged within
    Monte Carlo error; (c) wild target scores leave the curve draws exactly unchanged;
    (d) the cut's intervals include the between-θ variance: a plug-in θ gives narrower ones.
"""

import dataclasses

import arviz as az
import tomli_w
import numpy as np
import pytest
from scipy import stats

from bayes_densing.inference import bridge, cut
from bayes_densing.analyses import sbc
from bayes_densing.config import Config, ConfigError
from bayes_densing.inference.sample import conditional_bfmi, diagnose

SEED = 0


def _config() -> Config:
    cfg = Config()
    cfg.set("model.data_term", "off")
    cfg.set("model.curves", "cut")
    # the cut's machinery, on the model it was built with; offsets: test_target_offsets.py and
    # the SBC (on this 3-benchmark design they cost 1 divergence in 4,000 transitions)
    cfg.set("model.target_offsets", "off")
    cfg.sampler.chains, cfg.sampler.draws, cfg.sampler.tune = 2, 400, 300
    return cfg.validate()


@pytest.fixture(scope="module")
def design():
    return sbc.design(n_targets=12, n_benchmarks=3, seed=0, config=_config())


@pytest.fixture(scope="module")
def fitted(design):
    """One curve fit and the targets' warm-up; the nested runs at L = 5 and L = 10."""
    cfg = _config()
    sampler = cut.CutSampler(design, cfg)
    curve = sampler.curves(SEED)
    warm = sampler.warm_up(curve, SEED)
    keep = cut.kept_draws(cfg.sampler.draws, cfg.sampler.chains, 400)
    runs = {inner: sampler.conditional(curve, warm, keep, inner, SEED) for inner in (5, 10)}
    return dataclasses.make_dataclass("Fitted", ["sampler", "curve", "warm", "keep", "runs"])(
        sampler, curve, warm, keep, runs)


def _headline(idata, data) -> dict:
    """The pooled draws of T, three targets' ln N̂ and the trend's scales."""
    post = idata["posterior"].to_dataset()
    names = data.targets.sort_values("params").model.tolist()
    out = {"T": post["doubling_months"], "sigma_v": post["sigma_v"], "sigma_u": post["sigma_u"]}
    for name in (names[0], names[len(names) // 2], names[-1]):
        out[f"ln N̂ {name}"] = post["log_effective_size"].sel(target=name)
    return out


def test_inner_length_doubled_leaves_the_pooled_quantiles_unchanged(fitted, design):
    short, long = (_headline(fitted.runs[n], design) for n in (5, 10))
    for name in short:
        for prob in (0.05, 0.5, 0.95):
            a, b = (float(x[name].quantile(prob)) for x in (short, long))
            se = np.hypot(*(float(az.mcse(x[name], method="quantile", prob=prob))
                            for x in (short, long)))
            assert abs(a - b) <= 4 * se, (name, prob, a, b, se)


def test_the_posterior_layout_and_its_diagnostics(fitted, design):
    idata = fitted.runs[5]
    post = idata["posterior"]
    assert post.sizes["chain"] == 2 and post.sizes["draw"] == len(fitted.keep)
    np.testing.assert_array_equal(post["curve_draw"].values, fitted.keep)
    assert post.attrs["estimand"] == "cut" and post.attrs["inner_steps"] == 5
    # the curve parameters are the curve fit's own draws, in order
    np.testing.assert_allclose(post["z_centre"].values,
                               fitted.curve.z["z_centre"][:, fitted.keep])
    stats_ = idata["sample_stats"]
    assert stats_["inner_energy"].shape == (2, len(fitted.keep), 5)
    assert int(stats_["diverging"].sum()) == 0
    bfmi = conditional_bfmi(stats_["inner_energy"].values)
    assert np.all(bfmi > 0.3), bfmi
    d = diagnose(idata, ["A", "z_centre", "log_density_shifted"])
    assert d["max_rhat"] < 1.02 and d["min_ess_bulk"] > 200, d


def test_wild_target_scores_leave_the_curve_draws_unchanged(design, fitted):
    wild = dataclasses.replace(design, obs=design.obs.copy())
    is_target = wild.obs.model_idx.to_numpy() >= wild.n_ref
    wild.obs.loc[is_target, "k"] = np.where(np.arange(is_target.sum()) % 2 == 0,
                                            wild.obs.n[is_target], 0)
    assert not np.array_equal(wild.obs.k, design.obs.k)
    other = cut.CutSampler(wild, _config()).curves(SEED)
    for v in fitted.sampler.theta:
        np.testing.assert_array_equal(other.z[v.name], fitted.curve.z[v.name], err_msg=v.name)


def test_a_plug_in_curve_gives_narrower_intervals_than_the_cut(fitted, design):
    """The cut's effective sizes carry the curves' uncertainty; fixing θ at its median drops
    the between-θ variance (what a two-stage plug-in estimate would report)."""
    curve = fitted.curve
    median = {n: np.broadcast_to(np.median(x.reshape((-1,) + x.shape[2:]), axis=0), x.shape)
              for n, x in curve.z.items()}
    plug = dataclasses.replace(curve, z=median)
    plugged = fitted.sampler.conditional(plug, fitted.warm, fitted.keep, 5, SEED)

    def widths(idata):
        eta = idata["posterior"]["log_effective_size"]
        q = eta.quantile([0.05, 0.95], dim=("chain", "draw"))
        return (q.sel(quantile=0.95) - q.sel(quantile=0.05)).values

    # 1.02-1.18 here (mean 1.08); each ratio has a Monte Carlo error of about 5%, their mean
    # (12 targets) about 2%
    ratio = widths(fitted.runs[5]) / widths(plugged)
    assert np.mean(ratio) > 1.03, ratio


def test_each_target_matches_a_quadrature_mixture_over_the_same_curve_draws(design, fitted):
    """Trend and φ_target fixed: the targets are independent given θ, so each one's cut
    marginal is a mixture over θ draws of a 1-D posterior, computed here on a grid from the
    same log density; the nested runs' draws must follow it (KS test at the draws' ESS)."""
    cfg = _config()
    model = fitted.sampler.model
    latent = "log_density_shifted"
    others = [v for v in model.value_vars if v.name != latent]   # θ, trend and φ: inputs
    fixed_names = [v.name for v in others]
    fixed = fitted.sampler.target_args()
    sampler = bridge.sampler(model, cfg.sampler, inputs=others + list(fitted.sampler.sweep.inputs),
                                 parameters=[latent], parallel=False)
    start = model.initial_point()
    # 100 curve draws per chain, each visited 4 times: the runs' draws then have ~4× their ESS
    # and the mixture has exactly their components
    distinct = fitted.keep[::4]
    visits = np.tile(distinct, 4)

    def inputs_at(index):
        return tuple(fitted.curve.z[n][:, index] if n not in fitted.sampler.psi
                     else np.broadcast_to(start[n], (2, len(index)) + np.shape(start[n]))
                     for n in fixed_names)
    values = inputs_at(visits)
    centre = tuple(np.median(v.reshape((-1,) + v.shape[2:]), axis=0) for v in values)
    starts = [{latent: start[latent] + 0.1 * c} for c in range(2)]
    warm = sampler.run(starts, centre + fixed, seed=SEED, warmup_only=True, progressbar=False)
    draws = sampler.conditional_runs(warm, values, 5, seed=SEED, fixed=fixed, progressbar=False)
    x = draws.z[latent]                                  # (chain, draw, target)

    import jax
    import jax.numpy as jnp

    grid = np.linspace(x.min() - 3.0, x.max() + 3.0, 601)
    n_t = x.shape[-1]

    def posterior_on_grid(args):
        # given θ and the fixed trend the log density is a sum of one term per target, so its
        # gradient at (g, …, g) holds each target's own derivative at g: integrated over the
        # grid (trapezoids), each target's log density up to a constant
        gradient = jax.grad(sampler.potential)
        slope = jax.vmap(lambda g: -gradient(jnp.full(n_t, g), *args, *fixed))(grid)
        steps = 0.5 * (slope[1:] + slope[:-1]) * (grid[1] - grid[0])
        lp = jnp.concatenate([jnp.zeros((1, n_t)), jnp.cumsum(steps, axis=0)]).T
        w = jnp.exp(lp - lp.max(axis=1, keepdims=True))
        return w / w.sum(axis=1, keepdims=True)

    # every distinct curve draw of both chains at once: (draws, target, grid), averaged
    flat = tuple(np.reshape(v, (-1,) + v.shape[2:]) for v in inputs_at(distinct))
    mixture = np.asarray(jax.jit(jax.vmap(posterior_on_grid))(flat)).mean(axis=0)
    cdf = np.cumsum(mixture, axis=1)
    assert np.all(cdf[:, 5] < 1e-4) and np.all(cdf[:, -5] > 1 - 1e-4)  # the grid holds them
    ess = az.ess(az.convert_to_dataset({"x": x}))["x"].values
    worst = []
    for i in range(n_t):
        pooled = np.sort(x[..., i].ravel())
        quad = np.interp(pooled, grid, cdf[i])
        ecdf = np.arange(1, pooled.size + 1) / pooled.size
        distance = np.max(np.abs(ecdf - quad))
        # two-sided KS at the draws' effective size, 1% level, Bonferroni over the targets
        critical = stats.kstwobign.ppf(1 - 0.01 / n_t) / np.sqrt(ess[i])
        worst.append(distance / critical)
    assert max(worst) < 1.0, worst


def test_the_default_command_runs_the_cut_and_says_so(synth, tmp_path):
    """``bayes-densing sample`` without --curves fits the cut; the run reads back as one."""
    from typer.testing import CliRunner

    from bayes_densing.cli.app import app
    from bayes_densing.results import load_run

    out = tmp_path / "cut"
    result = CliRunner().invoke(app, [
        "sample", "--data", str(synth.csv), "--chains", "2", "--draws", "150", "--tune", "150",
        "--quiet", "--set", "model.data_term=off", "--no-figures", "--allow-warnings",
        "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Estimand: cut" in result.output
    run = load_run(out)
    assert run.config.model.curves == "cut" and run.diagnostics["estimand"] == "cut"
    assert run.idata["posterior"].attrs["estimand"] == "cut"
    assert "curve_draw" in run.idata["posterior"].coords


def test_other_samplers_fall_back_to_the_joint_unless_the_cut_is_asked_for(tmp_path, capsys):
    from bayes_densing.cli.common import build_config as _config
    from bayes_densing.config import load_config

    assert Config().model.curves == "cut" and load_config("default").model.curves == "cut"
    for preset in ("paper", "robust", "changepoint"):
        assert load_config(preset).model.curves == "cut"
    cfg = _config("default", {"sampler.sampler": "nutpie"}, [])
    assert cfg.model.curves == "joint"
    assert "nutpie (mass_matrix auto) fits the joint model" in capsys.readouterr().err
    assert _config("default", {}, ["sampler.mass_matrix=diag"]).model.curves == "joint"
    with pytest.raises(ConfigError, match="runs on the default sampler"):
        _config("default", {"sampler.sampler": "pymc", "model.curves": "cut"}, [])
    with pytest.raises(ConfigError, match="runs on the default sampler"):
        _config("default", {"sampler.sampler": "pymc"}, ["model.curves=cut"])
    mine = tmp_path / "mine.toml"
    mine.write_text('[sampler]\nsampler = "blackjax"\n', encoding="utf-8")
    assert load_config(str(mine)).model.curves == "joint"
    mine.write_text('[model]\ncurves = "cut"\n[sampler]\nsampler = "blackjax"\n',
                    encoding="utf-8")
    with pytest.raises(ConfigError, match="runs on the default sampler"):
        load_config(str(mine))
    # a whole config written before model.curves existed (a 0.1 run's config.toml) ran the
    # joint without target offsets; a partial one of the user's takes today's defaults
    old = Config().to_dict()
    del old["model"]["curves"], old["model"]["target_offsets"]
    mine.write_text(tomli_w.dumps(old), encoding="utf-8")
    then = load_config(str(mine)).model
    assert (then.curves, then.target_offsets) == ("joint", "off")
    mine.write_text('[model]\ntrend = "envelope"\n', encoding="utf-8")
    now = load_config(str(mine)).model
    assert (now.curves, now.target_offsets) == ("cut", "on")


def test_a_run_written_before_model_curves_reads_back_as_joint(lib_run, tmp_path):
    import shutil
    import tomllib

    from bayes_densing.results import rundir
    from bayes_densing.results import load_run

    old = tmp_path / "old"
    shutil.copytree(lib_run.out, old)
    config = old / "config.toml"
    text = config.read_text(encoding="utf-8")
    assert 'curves = "joint"' in text
    config.write_text(text.replace('curves = "joint"\n', ""), encoding="utf-8")
    assert "curves" not in tomllib.loads(config.read_text(encoding="utf-8"))["model"]
    rundir.write_manifest(old, "run", rundir.RUN_CORE)   # as a run of that version wrote it
    assert load_run(old).config.model.curves == "joint"


def test_the_cuts_curves_reproduce_the_paper_pipelines_sizes(fitted, design):
    """Tier (a) of the agreement with `classic`: its own inversion and mean over benchmarks,
    applied to every cut draw of the curves, gives its point sizes (the bundled data's
    numbers: benchmarks/cut_vs_classic.py, docs/model.md)."""
    from bayes_densing.analyses import classic

    cfg = _config()
    point = np.log(classic.fit(design, cfg).models.effective_params.to_numpy())
    post = fitted.runs[5]["posterior"].to_dataset()
    per_draw = np.nanmedian(classic.sizes_per_draw(post, design, cfg), axis=0)
    ok = np.isfinite(point) & np.isfinite(per_draw)
    assert ok.sum() >= 10
    assert abs(np.median(per_draw[ok] - point[ok])) <= 0.1, per_draw[ok] - point[ok]
    assert stats.spearmanr(per_draw[ok], point[ok]).statistic >= 0.98


def test_the_time_to_expect_counts_every_phase(monkeypatch):
    """``expected_seconds`` against the bundled data's measured sampling on 2 cores, with
    target offsets: 29 s for the cut, 13 s for the joint (benchmarks/README.md, "Target
    offsets")."""
    import os

    from bayes_densing.config import load_config

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    s = load_config("default").sampler
    expect = cut.expected_seconds(675, s)
    assert 15 < expect["cut"] < 35 and 6 < expect["joint"] < 15
    # more scores, more curve draws or fewer cores: proportionally longer
    assert cut.expected_seconds(1350, s)["cut"] == pytest.approx(2 * expect["cut"])
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert cut.expected_seconds(675, s)["joint"] == pytest.approx(2 * expect["joint"])
    s.curve_draws = 800
    assert cut.expected_seconds(675, s)["cut"] > 2 * expect["cut"]
    # a single chain's curve fit runs twice as long (cut.curve_length); the joint's does not
    s.curve_draws, s.chains = 0, 1
    assert cut.curve_length(s) == 2 * s.draws
    assert cut.expected_seconds(675, s)["joint"] == pytest.approx(expect["joint"] / 2)
