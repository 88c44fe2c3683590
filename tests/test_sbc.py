"""Simulation-based calibration: the rank machinery (checked on a conjugate normal model, where
the right posterior is known) and a small SBC of the real model, as CI can afford it.

The full study (100 datasets) is ``benchmarks/sbc.py``; its result is in benchmarks/README.md.
"""

import json

import numpy as np
import pytest
from scipy import stats

from bayes_densing.analyses import sbc
from bayes_densing.figures.sbc import rank_figure
from bayes_densing.config import Config

N_RANKS = 20


def conjugate_ranks(n_datasets, seed, sd_factor=1.0, shift_sd=0.0, n_draws=300):
    """θ ~ N(0, 1), y ~ N(θ, 1): the posterior is N(y/2, 1/2). Draws from a posterior whose
    sd is ``sd_factor`` times the right one and whose mean is ``shift_sd`` sds off."""
    rng = np.random.default_rng(seed)
    ranks = []
    for _ in range(n_datasets):
        theta = rng.normal()
        y = rng.normal(theta, 1.0)
        sd = np.sqrt(0.5)
        draws = rng.normal(y / 2 + shift_sd * sd, sd * sd_factor, n_draws)
        ranks.append(sbc.rank(draws, theta, N_RANKS))
    return np.array(ranks)


def test_rank_counts_thinned_draws_below_the_truth():
    draws = np.arange(1000.0)
    assert sbc.rank(draws, -1.0, N_RANKS) == 0
    assert sbc.rank(draws, 1e9, N_RANKS) == N_RANKS - 1
    assert sbc.rank(draws, 499.5, N_RANKS) in (9, 10)
    assert sbc.uniformity_p(np.arange(N_RANKS).repeat(3), N_RANKS, 4) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="equal bins"):
        sbc.uniformity_p(np.arange(N_RANKS), N_RANKS, 3)


def test_the_small_check_passes_calibrated_ranks_and_catches_gross_errors():
    seeds = range(10)
    calibrated = [sbc.gross_problems(conjugate_ranks(20, s), N_RANKS) for s in seeds]
    assert calibrated == [[]] * 10
    narrow = [sbc.gross_problems(conjugate_ranks(20, s, sd_factor=1 / 3), N_RANKS) for s in seeds]
    assert sum(any("too narrow" in p for p in found) for found in narrow) >= 8
    biased = [sbc.gross_problems(conjugate_ranks(20, s, shift_sd=1.5), N_RANKS) for s in seeds]
    assert sum(any("biased" in p for p in found) for found in biased) >= 8


@pytest.fixture(scope="module")
def small_sbc():
    """20 prior-predictive datasets (12 targets, 2 benchmarks), 2 × (150 + 150) draws each,
    fitted jointly."""
    cfg = Config()
    cfg.set("model.data_term", "off")
    cfg.set("model.curves", "joint")
    cfg.sampler.chains, cfg.sampler.draws, cfg.sampler.tune = 2, 150, 150
    return sbc.run(20, n_targets=12, n_benchmarks=2, config=cfg, seed=0, n_ranks=N_RANKS, bins=4)


def test_small_sbc_of_the_model_shows_no_gross_miscalibration(small_sbc):
    assert len(small_sbc.ranks) == len(sbc.QUANTITIES) + sbc.N_SIZES
    for label, ranks in small_sbc.ranks.items():
        assert len(ranks) == 20 and all(0 <= r < N_RANKS for r in ranks)
        assert sbc.gross_problems(ranks, N_RANKS) == [], (label, ranks)
    assert len(small_sbc.fits) == 20 and small_sbc.settings["n_targets"] == 12


def test_record_and_rank_figure(small_sbc, tmp_path):
    record = json.loads(json.dumps(small_sbc.to_dict()))
    assert record["min_p"] == min(record["p_values"].values()) and len(record["fits"]) == 20
    fig = rank_figure(small_sbc)
    assert len(fig.axes) == len(small_sbc.ranks)
    assert all("χ² p =" in ax.get_title() for ax in fig.axes)
    path = tmp_path / "sbc.png"
    fig.savefig(path, dpi=80)
    assert path.stat().st_size > 10_000


CURVE_QUANTITIES = ("shared α", "curve level z[0]")


@pytest.fixture(scope="module")
def small_cut_sbc():
    """The same 20 datasets as ``small_sbc``, fitted by the cut (``model.curves = "cut"``)."""
    cfg = Config()
    cfg.set("model.data_term", "off")
    cfg.set("model.curves", "cut")
    cfg.sampler.chains, cfg.sampler.draws, cfg.sampler.tune = 2, 150, 150
    return sbc.run(20, n_targets=12, n_benchmarks=2, config=cfg, seed=0, n_ranks=N_RANKS, bins=4)


def test_small_sbc_of_the_cut_calibrates_the_curves_and_is_never_too_narrow(small_cut_sbc):
    """Under the cut the curve parameters' posterior is exact, p(θ | reference scores): their
    ranks must be uniform. The targets' and the trend's cut posterior is not the joint one the
    truths are drawn from; when the model holds it may be wider, never narrower or biased."""
    result = small_cut_sbc
    assert result.settings["model"]["curves"] == "cut"
    title = rank_figure(result)._suptitle.get_text()
    assert "cut" in title and "target offsets" in title      # the default model has them
    for label in CURVE_QUANTITIES:
        assert sbc.gross_problems(result.ranks[label], N_RANKS) == [], (label, result.ranks[label])
    for label, ranks in result.ranks.items():
        found = [p for p in sbc.gross_problems(ranks, N_RANKS)
                 if p.startswith(("too narrow", "biased"))]
        assert found == [], (label, ranks)


def test_coverage_when_the_model_holds_cut_and_joint(small_sbc, small_cut_sbc):
    """Well specified: both cover the effective sizes at about 90% (tolerance at a 1%
    false-alarm rate, 240 intervals in 20 datasets, the datasets as the units:
    ``sbc.clustered_tolerance``; the cut may be above it, never below), and the cut's
    intervals are at least as wide as the joint's (it does not let the targets inform the
    curves)."""
    joint, cut = (sbc.coverage_summary(r.fits) for r in (small_sbc, small_cut_sbc))
    assert joint["eta"]["n"] == cut["eta"]["n"] == 240
    assert joint["eta"]["within_clustered"], joint
    assert cut["eta"]["rate"] >= cut["eta"]["tolerance_clustered"][0], cut
    assert cut["eta"]["mean_width"] >= 0.98 * joint["eta"]["mean_width"], (cut, joint)
    assert cut["A"]["rate"] >= 0.75 and joint["A"]["rate"] >= 0.75, (cut, joint)


def test_coverage_summary_judges_against_a_binomial_tolerance():
    fits = [{"eta_covered": 9, "eta_n": 10, "eta_width": 1.0, "A_covered": True,
             "A_width": 0.1}] * 100
    c = sbc.coverage_summary(fits)
    assert c["eta"]["rate"] == 0.9 and c["eta"]["within"] and c["A"]["rate"] == 1.0
    assert not c["A"]["within"]          # 100 of 100 is too many for 90% at 1% false alarms
    low = [dict(f, eta_covered=7) for f in fits]
    assert not sbc.coverage_summary(low)["eta"]["within"]


def test_intervals_that_miss_together_widen_the_tolerance():
    """Twenty datasets of 12 targets: when each dataset's targets are all covered or all
    missed, the tolerance with the datasets as units is far wider than the binomial one of 240
    independent intervals; when they miss independently the two agree."""
    together = [{"eta_covered": 12 if k < 18 else 0, "eta_n": 12} for k in range(20)]
    lo, hi = sbc.clustered_tolerance([f["eta_covered"] for f in together], [12] * 20)
    binom = sbc.coverage_summary([dict(f, eta_width=1.0, A_covered=True, A_width=0.1)
                                  for f in together])["eta"]["tolerance"]
    assert hi - lo > 2.5 * (binom[1] - binom[0])
    rng = np.random.default_rng(0)
    apart = rng.binomial(12, 0.9, size=2000)
    lo, hi = sbc.clustered_tolerance(apart, [12] * 2000)
    n = 12 * 2000
    b_lo, b_hi = (stats.binom.ppf([0.005, 0.995], n, 0.9) / n)
    assert abs((hi - lo) - (b_hi - b_lo)) < 0.15 * (b_hi - b_lo)
