"""The paper's point pipeline (classic.py) and `bayes-densing classic`: exact recovery on
noise-free synthetic data, the bundled dataset, NaN reporting, errors and the CLI. No MCMC."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayes_densing.model import laws
from bayes_densing.analyses.classic import ClassicError, fit
from bayes_densing.cli.app import app
from bayes_densing.config import Config, load_config
from bayes_densing.data import load

ORIGIN = pd.Timestamp("2023-02-24")
A_TRUE = laws.LN2 / 95.0                    # per day: the paper's doubling time
B_TRUE = -0.5
REF_SIZES = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
CURVES = {   # benchmark: (alpha, l, gamma); chance from the registry (0.25, 0.0, 0.25)
    "mmlu": (0.25, 0.8, 4.0),
    "gsm8k": (0.4, 0.6, 3.0),
    "arc_challenge": (0.15, 0.85, 6.0),
}
CHANCE = {"mmlu": 0.25, "gsm8k": 0.0, "arc_challenge": 0.25}
# (name, params, day since ORIGIN, ln rho or None for "below the running max")
FRONTIER = [("f0", 3.0, 10), ("f1", 7.0, 80), ("f2", 1.5, 160), ("f3", 13.0, 250),
            ("f4", 2.0, 330), ("f5", 8.0, 420)]
BELOW = [("b0", 6.0, 40, 0.3), ("b1", 2.5, 120, 0.8), ("b2", 30.0, 200, 0.4),
         ("b3", 4.0, 300, 1.1), ("b4", 1.2, 380, 0.5), ("b5", 14.0, 420, 0.2)]
N_ITEMS = 100000


def frontier_line(day):
    return A_TRUE * day + B_TRUE


def targets():
    """(name, N, day, ln rho): the frontier on the line, the others below the running max."""
    rows = [(n, p, day, frontier_line(day)) for n, p, day in FRONTIER]
    for name, p, day, drop in BELOW:
        earlier = max(frontier_line(d) for _, _, d in FRONTIER if d <= day)
        rows.append((name, p, day, earlier - drop))
    return rows


def score(N, D, bench, law=None):
    alpha, l, gamma = CURVES[bench]
    law = law or dict(a=1.0, E=0.0, b=0.0, beta=1.0)
    L = laws.loss_law(N, D, alpha=alpha, **law)
    return laws.performance(L, 1.0 - CHANCE[bench], gamma, l, CHANCE[bench]), L


def write_csv(path, *, law=None, tokens=None, losses=False, extra=(), rows=None):
    """A long CSV with role and n_items columns; scores noise-free from CURVES and targets()."""
    lines = []
    ref_tokens = tokens or [None] * len(REF_SIZES)
    for N, D in zip(REF_SIZES, ref_tokens):
        for bench in CURVES:
            S, L = score(N, D if D is not None else 1.0, bench, law)
            lines.append(dict(model=f"ref-{N:g}b", family="Ref", params=N,
                              tokens="" if D is None else D, release_date="2023-01-01",
                              benchmark=bench, score=repr(float(S)), role="reference",
                              n_items=N_ITEMS, loss=repr(float(L)) if losses else ""))
    for name, N, day, log_rho in (rows if rows is not None else targets()):
        for bench in CURVES:
            S, _ = score(N * math.exp(log_rho), 1.0, bench, law)
            lines.append(dict(model=name, family=name, params=N, tokens="",
                              release_date=f"{ORIGIN + pd.Timedelta(days=day):%Y-%m-%d}",
                              benchmark=bench, score=repr(float(S)), role="target",
                              n_items=N_ITEMS, loss=""))
    lines += [dict(e) for e in extra]
    df = pd.DataFrame(lines)
    if not losses:
        df = df.drop(columns="loss")
    df.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def synth_csv(tmp_path_factory):
    return write_csv(tmp_path_factory.mktemp("classic") / "exact.csv")


def check_exact(result, law_keys=("alpha",)):
    table = result.benchmarks.set_index("benchmark")
    for bench, (alpha, l, gamma) in CURVES.items():
        got = table.loc[bench]
        assert got.alpha == pytest.approx(alpha, rel=1e-3), bench
        assert got.l == pytest.approx(l, rel=1e-3), bench
        assert got.gamma == pytest.approx(gamma, rel=1e-3), bench
        assert got.rmse_score < 1e-6
    truth = {name: (N, log_rho) for name, N, _, log_rho in targets()}
    models = result.models.set_index("model")
    for name, (N, log_rho) in truth.items():
        assert models.loc[name, "log_density"] == pytest.approx(log_rho, abs=1e-4), name
        assert models.loc[name, "effective_params"] == pytest.approx(N * math.exp(log_rho),
                                                                     rel=1e-4), name
    assert result.A_per_day == pytest.approx(A_TRUE, rel=1e-3)
    assert result.B == pytest.approx(B_TRUE, abs=1e-3)
    assert result.doubling_days == pytest.approx(95.0, rel=1e-3)
    assert result.doubling_months == pytest.approx(95.0 / laws.DAYS_PER_MONTH, rel=1e-3)
    assert result.r2 == pytest.approx(1.0, abs=1e-6)
    assert set(result.envelope_models().model) == {n for n, _, _ in FRONTIER}
    assert result.n_envelope == len(FRONTIER)
    # the mean trend over all targets is pulled down by the models below the frontier
    assert result.mean_r2 < 0.999


def test_score_only_pipeline_recovers_curves_and_trend_exactly(synth_csv):
    data = load(Config(), synth_csv)
    assert not data.has_loss
    result = fit(data, Config())
    assert not result.loss_mode and not result.data_term
    check_exact(result)
    assert (result.models.n_benchmarks_used == len(CURVES)).all()
    assert result.notices == []


def test_loss_mode_fits_the_loss_law_then_the_map(tmp_path):
    law = dict(a=1.5, E=0.3, b=0.0, beta=1.0)
    data = load(Config(), write_csv(tmp_path / "loss.csv", law=law, losses=True))
    assert data.has_loss
    result = fit(data, Config())
    assert result.loss_mode and not result.data_term
    table = result.benchmarks.set_index("benchmark")
    assert table.E.to_numpy() == pytest.approx([0.3] * 3, rel=1e-3)
    assert table.a.to_numpy() == pytest.approx([1.5] * 3, rel=1e-3)
    assert (table.rmse_loss < 1e-8).all()
    check_exact(result)


def test_loss_mode_with_the_data_term(tmp_path):
    law = dict(a=1.2, E=0.2, b=0.5, beta=0.28)
    tokens = [0.3, 2.0, 0.8, 5.0, 1.5, 10.0, 3.0, 0.6]
    data = load(Config(), write_csv(tmp_path / "dt.csv", law=law, tokens=tokens, losses=True))
    result = fit(data, Config())
    assert result.data_term and result.loss_mode
    table = result.benchmarks
    assert table.b.to_numpy() == pytest.approx([0.5] * 3, rel=1e-3)
    assert table.beta.to_numpy() == pytest.approx([0.28] * 3, rel=1e-3)
    check_exact(result)


def test_score_only_with_data_term_fixes_b_and_beta_at_the_prior_centres(tmp_path):
    cfg = Config()
    law = dict(a=1.0, E=0.0, b=cfg.priors.data_coef, beta=cfg.priors.beta)
    tokens = [0.3, 2.0, 0.8, 5.0, 1.5, 10.0, 3.0, 0.6]
    data = load(cfg, write_csv(tmp_path / "sdt.csv", law=law, tokens=tokens))
    result = fit(data, cfg)
    assert result.data_term and not result.loss_mode
    assert any("prior centres" in n for n in result.notices)
    check_exact(result)
    off = Config()
    off.model.data_term = "off"      # the same scores without the term cannot be fitted exactly
    assert fit(data, off).benchmarks.rmse_score.max() > 1e-4


def test_scores_below_chance_are_reported_not_fatal(tmp_path):
    extra = []
    day = f"{ORIGIN + pd.Timedelta(days=200):%Y-%m-%d}"
    weak = {"mmlu": 0.20, "gsm8k": 0.30, "arc_challenge": 0.45}     # below chance on mmlu only
    dud = {"mmlu": 0.24, "gsm8k": 0.0, "arc_challenge": 0.25}       # no size anywhere
    for name, scores in (("weak", weak), ("dud", dud)):
        for bench, s in scores.items():
            extra.append(dict(model=name, family=name, params=5.0, tokens="", release_date=day,
                              benchmark=bench, score=s, role="target", n_items=N_ITEMS))
    data = load(Config(), write_csv(tmp_path / "nan.csv", extra=extra))
    result = fit(data, Config())
    models = result.models.set_index("model")
    assert models.loc["weak", "n_benchmarks_used"] == 2
    assert np.isfinite(models.loc["weak", "log_density"])
    assert models.loc["dud", "n_benchmarks_used"] == 0
    assert np.isnan(models.loc["dud", "log_density"]) and not models.loc["dud", "on_envelope"]
    table = result.benchmarks.set_index("benchmark")
    assert table.loc["mmlu", "n_below_chance"] == 2
    assert table.loc["gsm8k", "n_below_chance"] == 1 and table.loc["arc_challenge", "n_below_chance"] == 1
    assert result.n_trend_models == len(targets()) + 1
    notes = " ".join(result.notices)
    assert "mmlu: 2 target score(s) at or below chance" in notes and "weak" in notes
    assert "no effective size on any benchmark" in notes and "dud" in notes
    # the trend itself is untouched: both extra models lie below the frontier
    assert result.A_per_day == pytest.approx(A_TRUE, rel=1e-3)
    text = result.summary_text()
    assert "without a size" in text and "dud" in text
    json.dumps(result.to_dict(), allow_nan=False)       # NaNs become null


def test_too_few_envelope_dates_is_a_clear_error(tmp_path):
    rows = [("old", 7.0, 10, 2.0), ("new", 7.0, 100, 0.5), ("newer", 3.0, 200, 1.0)]
    data = load(Config(), write_csv(tmp_path / "env.csv", rows=rows))
    with pytest.raises(ClassicError, match="envelope has 1 model"):
        fit(data, Config())


def test_a_benchmark_that_does_not_rise_with_size_is_named(tmp_path):
    path = write_csv(tmp_path / "flat.csv")
    df = pd.read_csv(path, keep_default_na=False)
    df.loc[(df.role == "reference") & (df.benchmark == "gsm8k"), "score"] = 0.3
    df.to_csv(path, index=False)
    with pytest.raises(ClassicError, match="gsm8k.*do not rise"):
        fit(load(Config(), path), Config())


def test_to_dict_is_json_safe_and_complete(synth_csv):
    result = fit(load(Config(), synth_csv), Config())
    d = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert d["method"] == "classic"
    assert d["A_per_day"] == pytest.approx(A_TRUE, rel=1e-3)
    assert d["doubling_days"] == pytest.approx(95.0, rel=1e-3)
    assert len(d["models"]) == len(targets()) and len(d["benchmarks"]) == len(CURVES)
    assert d["models"][0]["release_date"] == f"{ORIGIN + pd.Timedelta(days=10):%Y-%m-%d}"
    assert {"model", "params", "release_date", "effective_params", "density",
            "n_benchmarks_used", "on_envelope"} <= set(d["models"][0])


@pytest.mark.parametrize("preset", ["default", "paper"])
def test_bundled_dataset_gives_a_growing_density(preset):
    cfg = load_config(preset)
    result = fit(load(cfg, None), cfg)
    print(f"\n{preset}: A = {result.A_per_day:.5f}/day, doubling {result.doubling_days:.1f} days "
          f"({result.doubling_months:.2f} months), R² = {result.r2:.3f}, "
          f"{result.n_envelope} envelope models; mean trend A = {result.mean_A_per_day:.5f}/day")
    assert np.isfinite(result.A_per_day) and result.A_per_day > 0
    assert np.isfinite(result.doubling_days) and result.n_envelope >= 2
    assert result.n_trend_models > 50


# --- CLI ------------------------------------------------------------------------------------------

def invoke(args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def test_cli_classic_prints_the_doubling_time_and_writes_json(synth_csv, tmp_path):
    out = tmp_path / "sub" / "classic.json"
    result = invoke(["classic", "--data", synth_csv, "--out", out, "--top", 3])
    assert result.exit_code == 0, result.output
    assert "doubling time: 95.0 days (3.12 months)" in result.stdout
    assert "6 envelope models" in result.stdout and "R² = 1.000" in result.stdout
    assert "top 3 models by density" in result.stdout
    saved = json.loads(out.read_text())
    assert saved["doubling_days"] == pytest.approx(95.0, rel=1e-3)
    assert not list(out.parent.glob(".*.tmp"))        # the temporary file was renamed


def test_cli_classic_bad_input_exits_2_with_one_line(synth_csv):
    result = invoke(["classic", "--data", synth_csv, "--benchmarks", "mmlu,nope"])
    assert result.exit_code == 2
    assert result.output.startswith("error:") and "nope" in result.output
    assert result.output.strip().count("\n") == 0
    bad = invoke(["classic", "--data", synth_csv, "--set", "model.d0"])
    assert bad.exit_code == 2 and bad.output.startswith("error:")


def test_cli_classic_help_has_an_example():
    result = invoke(["classic", "--help"])
    assert result.exit_code == 0
    assert "bayes-densing classic --preset paper" in result.stdout
