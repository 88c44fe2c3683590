"""Release groups (``model.release_groups = "on"``): the targets of one family released on one
day share a shift u_g = σ_group·z_g of their trend location, so that six sizes of one release
count as one draw of the between-release spread, not six (issue #30, item 4)."""

import dataclasses

import numpy as np
import pandas as pd
import pytensor.tensor as pt
import pytest
from scipy import stats
from typer.testing import CliRunner

from bayes_densing.model import laws
from bayes_densing.cli.app import app
from bayes_densing.config import Config, upgraded
from bayes_densing.inference.cut import target_parameters
from bayes_densing.data import load
from bayes_densing.model.build import build_model
from bayes_densing.model.trend import release_groups
from bayes_densing.results import load_run

DAY1, DAY2 = pd.Timestamp("2024-04-29"), pd.Timestamp("2024-05-10")


def _regrouped(data):
    """``data`` with its targets in releases: three Qwen3 on DAY1, two Qwen3 on DAY2, one
    without a family on DAY1, the rest one family on DAY1 (dates are all the groups need)."""
    n, models = data.n_target, data.models.copy()
    models["family"] = models.family.astype(object)
    rows = models.index[data.n_ref:]
    models.loc[rows, "family"] = ["Qwen3"] * 5 + [None] + ["Other"] * (n - 6)
    models.loc[rows, "release_date"] = [DAY1] * 3 + [DAY2] * 2 + [DAY1] * (n - 5)
    return dataclasses.replace(data, models=models)


@pytest.fixture(scope="module")
def grouped(synth):
    return _regrouped(load(Config(), synth.csv))


def test_one_family_on_one_day_is_one_group_and_two_days_two(grouped):
    index, labels = release_groups(grouped)
    lonely = grouped.targets.model.iloc[5]
    assert labels == ["Qwen3 2024-04-29", "Qwen3 2024-05-10", f"{lonely} 2024-04-29",
                      "Other 2024-04-29"]
    assert index.tolist() == [0, 0, 0, 1, 1, 2] + [3] * (grouped.n_target - 6)


def _config(release_groups: str, trend: str, reparam: str = "centred") -> Config:
    cfg = Config()
    for key, value in (("model.release_groups", release_groups), ("model.trend", trend),
                       ("model.reparam", reparam), ("model.data_term", "off")):
        cfg.set(key, value)
    return cfg


def _logp(data, cfg, weights=None):
    """The model's log density as a function of some of its values (the rest at the initial
    point), compiled once."""
    model = build_model(data, cfg, weights=weights)
    start = model.initial_point()
    # the plain Python linker: the default, Numba, compiles for tens of seconds first
    logp = model.compile_logp(mode="FAST_COMPILE")
    return lambda point: float(logp({k: point.get(k, v) for k, v in start.items()}))


@pytest.mark.parametrize("trend", ["frontier", "mean"])
def test_the_term_shifts_each_targets_trend_location_by_its_groups_effect(grouped, trend):
    """Centred, so each ln ρ_i is a value: the log density with the term is the one without
    plus the priors of z and σ_group and, per target, the trend density at μ_i + σ_group·z_g(i)
    instead of μ_i (scipy's); and with σ_group → 0 it is the one without plus those priors."""
    rng = np.random.default_rng(0)
    off = build_model(grouped, _config("off", trend))
    point = {k: v + rng.normal(0.0, 0.3, np.shape(v)) for k, v in off.initial_point().items()}
    index, labels = release_groups(grouped)
    z = rng.normal(size=len(labels))

    def priors(sigma):   # z's and σ_group's (with the log transform's Jacobian, ln σ)
        return (stats.norm.logpdf(z).sum() + stats.halfnorm.logpdf(sigma, scale=0.5)
                + np.log(sigma))

    def trend_density(shift):
        t = grouped.targets.t.to_numpy(dtype=float)
        mu = laws.trend_mean(t - t.mean(), point["A"], point["B_centre"]) + shift
        x = point["log_density"]
        if trend == "mean":
            return stats.norm.logpdf(x, mu, np.exp(point["sigma_log__"])).sum()
        omega, shape = laws.frontier_skewnormal(np.exp(point["sigma_v_log__"]),
                                                np.exp(point["sigma_u_log__"]))
        return stats.skewnorm.logpdf(x, shape, mu, omega).sum()

    without = _logp(grouped, _config("off", trend))(point)
    on = _logp(grouped, _config("on", trend))
    for sigma in (0.7, 1e-9):
        with_term = on({**point, "release_group_raw": z, "sigma_group_log__": np.log(sigma)})
        expected = without + priors(sigma) + trend_density(sigma * z[index]) - trend_density(0.0)
        assert with_term == pytest.approx(expected, abs=1e-6)
    assert abs(trend_density(0.7 * z[index]) - trend_density(0.0)) > 0.1   # the check can fail


def test_an_unscored_groups_effect_is_a_standard_normal(grouped):
    """The weighted model (sweep, cut's curve module): a group whose targets have no weighted
    score keeps its z at N(0, 1), whatever the rest, so it cannot pull on anything."""
    cfg = _config("on", "frontier", reparam="shear")
    obs_w = np.ones(len(grouped.obs))
    first_group = np.isin(grouped.obs.model_idx.to_numpy() - grouped.n_ref, [0, 1, 2])
    obs_w[first_group] = 0.0
    weights = (pt.as_tensor(obs_w), pt.as_tensor(np.ones(len(grouped.benchmarks))))
    logp = _logp(grouped, cfg, weights)
    z = np.zeros(len(release_groups(grouped)[1]))
    at = {}
    for value in (0.0, 1.5):
        z[0] = value
        at[value] = logp({"release_group_raw": z.copy()})
    assert at[1.5] - at[0.0] == pytest.approx(-0.5 * 1.5**2, abs=1e-9)
    z[1] = 1.5          # a scored group's z moves its targets' trend: more than its prior
    assert logp({"release_group_raw": z}) - at[1.5] != pytest.approx(-0.5 * 1.5**2, abs=1e-3)


def test_the_terms_variables_are_the_targets_module_and_old_runs_read_as_off(grouped):
    psi = target_parameters(build_model(grouped, _config("on", "frontier", "shear")))
    assert {"release_group_raw", "sigma_group_log__"} <= set(psi)
    old = Config().to_dict()
    del old["model"]["release_groups"]
    assert Config.from_dict(upgraded(old)).model.release_groups == "off"
    with pytest.raises(ValueError, match="model.release_groups must be one of off, on"):
        _config("yes", "frontier").validate()


def test_a_small_cut_fit_with_release_groups(synth, tmp_path):
    """The default estimand (the cut) through the command line, on releases of the simulated
    targets (4 of 3 models; no true group effects): no divergences, and σ_group and each
    group's u in the posterior by label. At --tune 100 this fit had 3 divergent transitions
    of 200 and the same fit without the term none; at 150 it has none."""
    df = synth.df.copy()
    targets = df[df.role == "target"].model.drop_duplicates().tolist()
    release = {m: (f"Rel{i // 3}", df.release_date[df.model == targets[i // 3 * 3]].iloc[0])
               for i, m in enumerate(targets)}
    at_target = df.role == "target"
    df.loc[at_target, "family"] = df.model[at_target].map(lambda m: release[m][0])
    df.loc[at_target, "release_date"] = df.model[at_target].map(lambda m: release[m][1])
    csv = tmp_path / "releases.csv"
    df.to_csv(csv, index=False)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "sample", "--data", str(csv), "--chains", "2", "--draws", "150", "--tune", "150",
        "--quiet", "--set", "model.data_term=off", "--set", "model.release_groups=on",
        "--no-figures", "--allow-warnings", "--out", str(out)])
    assert result.exit_code == 0, result.output
    run = load_run(out)
    post = run.idata.posterior
    assert run.diagnostics["divergences"] == 0
    assert post.attrs["estimand"] == "cut"
    assert post["sigma_group"].sizes == {"chain": 2, "draw": 150}
    assert list(post.release_group_effect.release_group.values) == [
        f"Rel{g} {release[targets[3 * g]][1]}" for g in range(len(targets) // 3)]
