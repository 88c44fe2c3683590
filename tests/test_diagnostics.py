"""Every diagnostic threshold fires on draws made to fail it, and only then (inference.diagnose)."""

import arviz as az
import numpy as np
import pytest

from bayes_densing.inference.sample import BFMI_MIN, ESS_MIN, RHAT_MAX, diagnose, problems

CHAINS, DRAWS = 4, 1000


def _idata(x=None, diverging=None, energy=None, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(CHAINS, DRAWS)) if x is None else x
    stats = {"diverging": np.zeros((CHAINS, DRAWS), bool) if diverging is None else diverging,
             "energy": rng.normal(size=(CHAINS, DRAWS)) if energy is None else energy}
    return az.from_dict({"posterior": {"A": x, "B": rng.normal(size=(CHAINS, DRAWS))},
                         "sample_stats": stats})


def _ar1(rho, seed=1):
    rng = np.random.default_rng(seed)
    x = np.zeros((CHAINS, DRAWS))
    for t in range(1, DRAWS):
        x[:, t] = rho * x[:, t - 1] + rng.normal(size=CHAINS)
    return x


def test_clean_draws_pass():
    d = diagnose(_idata(), ["A", "B"])
    assert d["problems"] == []
    assert d["divergences"] == 0 and d["max_rhat"] < RHAT_MAX
    assert d["min_ess_bulk"] > ESS_MIN and d["min_bfmi"] > BFMI_MIN


def test_divergences_fail():
    div = np.zeros((CHAINS, DRAWS), bool)
    div[1, [5, 50, 500]] = True
    assert diagnose(_idata(diverging=div), ["A", "B"])["problems"] == ["3 divergent transitions"]


def test_chains_that_disagree_fail_rhat():
    x = np.random.default_rng(2).normal(size=(CHAINS, DRAWS))
    x[0] += 0.5                                           # one chain stuck elsewhere
    d = diagnose(_idata(x=x), ["A", "B"])
    assert d["max_rhat"] > RHAT_MAX and d["max_rhat_var"] == "A"
    assert any(p.startswith("max R-hat") and "(A)" in p for p in d["problems"])


def test_sticky_chains_fail_ess():
    d = diagnose(_idata(x=_ar1(0.995)), ["A", "B"])
    assert d["min_ess_bulk"] < ESS_MIN and d["min_ess_bulk_var"] == "A"
    assert any(p.startswith("min ESS") and "(A)" in p for p in d["problems"])


def test_low_energy_fraction_fails_bfmi():
    walk = np.cumsum(np.random.default_rng(3).normal(size=(CHAINS, DRAWS)), axis=1)
    d = diagnose(_idata(energy=walk), ["A", "B"])
    assert d["min_bfmi"] < BFMI_MIN
    assert any(p.startswith("E-BFMI") for p in d["problems"])


@pytest.mark.parametrize("numbers, expected", [
    ({"divergences": 1}, "1 divergent transitions"),
    ({"max_rhat": 1.011, "max_rhat_var": "A"}, "max R-hat 1.011 > 1.01 (A)"),
    ({"min_ess_bulk": 900, "min_ess_tail": 399, "min_ess_tail_var": "sigma_u"},
     "min ESS 399 < 400 (sigma_u)"),
    ({"min_bfmi": 0.29}, "E-BFMI 0.29 < 0.3"),
])
def test_each_threshold_is_strict_at_its_edge(numbers, expected):
    assert problems(numbers) == [expected]
    edge = {"divergences": 0, "max_rhat": RHAT_MAX, "min_ess_bulk": ESS_MIN,
            "min_ess_tail": ESS_MIN, "min_bfmi": BFMI_MIN}
    assert problems(edge) == []                      # exactly at the threshold passes




def test_one_chain_says_why_r_hat_is_absent():
    """A single chain has no R-hat (it compares chains): the summary and report say so, and
    diagnose does not stop on the missing number."""
    import arviz as az
    import numpy as np

    from bayes_densing.inference.sample import ONE_CHAIN, diagnose, rhat_text

    rng = np.random.default_rng(0)
    idata = az.from_dict({"posterior": {"A": rng.normal(size=(1, 500))},
                          "sample_stats": {"diverging": np.zeros((1, 500), bool)}})
    d = diagnose(idata, ["A"])
    assert d["chains"] == 1 and d["notes"] == [ONE_CHAIN]
    assert rhat_text(d) == "n/a (one chain)"
    assert not any("R-hat" in p for p in d["problems"])
