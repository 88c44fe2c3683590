"""The simulator: deterministic, the requested shape, valid scores, a consistent truth, loadable."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from bayes_densing.model import laws
from bayes_densing.config import Config
from bayes_densing.data import load
from bayes_densing.model.simulate import DEFAULT_BENCHMARKS, REFERENCE_SIZES, simulate, write


def test_same_seed_same_data_and_truth():
    df1, truth1 = simulate(n_models=9, n_benchmarks=3, seed=5)
    df2, truth2 = simulate(n_models=9, n_benchmarks=3, seed=5)
    pd.testing.assert_frame_equal(df1, df2)
    assert truth1 == truth2


def test_different_seed_different_data():
    df1, truth1 = simulate(n_models=9, n_benchmarks=3, seed=5)
    df2, truth2 = simulate(n_models=9, n_benchmarks=3, seed=6)
    assert not np.array_equal(df1.score.to_numpy(), df2.score.to_numpy())
    assert truth1["targets"] != truth2["targets"]
    assert truth2["seed"] == 6


@pytest.mark.parametrize("n_models, n_benchmarks, n_reference", [(7, 3, 4), (3, 1, 2), (20, 12, 8)])
def test_requested_shape(n_models, n_benchmarks, n_reference):
    df, truth = simulate(n_models=n_models, n_benchmarks=n_benchmarks, n_reference=n_reference,
                         seed=2)
    assert len(df) == (n_models + n_reference) * n_benchmarks
    assert not df.duplicated(["model", "benchmark"]).any()
    per_role = df.drop_duplicates("model").role.value_counts().to_dict()
    assert per_role == {"target": n_models, "reference": n_reference}
    assert sorted(df.benchmark.unique()) == sorted(DEFAULT_BENCHMARKS[:n_benchmarks])
    assert truth["benchmarks"] == list(DEFAULT_BENCHMARKS[:n_benchmarks])
    # every model is scored on every benchmark
    assert (df.groupby("model").benchmark.nunique() == n_benchmarks).all()
    refs = df[df.role == "reference"].drop_duplicates("model")
    assert set(refs.family) == {"SimRef"} == {truth["reference_family"]}
    assert refs.params.nunique() == n_reference
    assert set(refs.params) <= set(REFERENCE_SIZES)
    assert len(truth["targets"]) == n_models


def test_scores_are_fractions_of_whole_item_counts():
    from bayes_densing.data.registry import REGISTRY

    df, _ = simulate(n_models=15, n_benchmarks=6, seed=3)
    assert df.score.between(0.0, 1.0).all()
    assert df.score.notna().all()
    n = df.benchmark.map(lambda b: REGISTRY[b].n_items).to_numpy()
    k = df.score.to_numpy() * n
    np.testing.assert_allclose(k, np.rint(k), atol=1e-6)
    # not degenerate: scores vary across models on every benchmark
    assert (df.groupby("benchmark").score.nunique() > 1).all()


def test_truth_is_consistent_with_the_table():
    df, truth = simulate(n_models=10, n_benchmarks=2, doubling_months=4.5, seed=7)
    assert truth["doubling_months"] == 4.5
    assert truth["A"] == pytest.approx(laws.LN2 / 4.5, rel=1e-12)
    targets = df[df.role == "target"].drop_duplicates("model").set_index("model")
    assert set(truth["targets"]) == set(targets.index)
    for name, t in truth["targets"].items():
        expected = math.log(targets.params[name]) + t["log_density"]
        assert t["log_effective_size"] == pytest.approx(expected, abs=1e-12), name


def test_truth_matches_after_a_csv_round_trip(tmp_path):
    """The written CSV's params (as read back) still satisfy log N̂ = log N + log ρ."""
    df, truth = simulate(n_models=6, n_benchmarks=2, seed=11)
    csv, truth_path = write(df, truth, tmp_path / "sim.csv")
    back = pd.read_csv(csv)
    written_truth = json.loads(truth_path.read_text())
    assert written_truth["targets"] == truth["targets"]
    params = back[back.role == "target"].drop_duplicates("model").set_index("model").params
    for name, t in written_truth["targets"].items():
        assert t["log_effective_size"] == pytest.approx(math.log(params[name]) + t["log_density"],
                                                        abs=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_benchmarks=0), "n_benchmarks"),
    (dict(n_benchmarks=len(DEFAULT_BENCHMARKS) + 1), "n_benchmarks"),
    (dict(n_models=2), "n_models"),
    (dict(n_reference=1), "n_reference"),
    (dict(n_reference=len(REFERENCE_SIZES) + 1), "n_reference"),
])
def test_invalid_sizes_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate(**kwargs)


def test_written_csv_loads_with_its_role_column(tmp_path):
    df, truth = simulate(n_models=12, n_benchmarks=2, seed=0)
    csv, truth_path = write(df, truth, tmp_path / "synth.csv")
    assert truth_path == tmp_path / "synth.truth.json" and truth_path.exists()
    data = load(Config(), csv)        # no --reference: the role column says which is which
    assert data.n_ref == 8 and data.n_target == 12
    assert set(data.references.family) == {"SimRef"}
    assert set(data.targets.model) == set(truth["targets"])
    assert data.benchmarks == sorted(truth["benchmarks"])
    assert len(data.obs) == len(df) == 40
    assert not any("no reference models" in n for n in data.notices), data.notices
    # the loader recovers the simulated counts exactly
    merged = df.merge(pd.DataFrame({"model": data.models.model.to_numpy()[data.obs.model_idx],
                                    "benchmark": np.asarray(data.benchmarks)[data.obs.bench_idx],
                                    "k": data.obs.k, "n": data.obs.n}), on=["model", "benchmark"])
    assert len(merged) == len(df)
    np.testing.assert_array_equal(merged.k, np.rint(merged.score * merged.n).astype(int))
    # the references' sizes and tokens reach the model container
    assert data.references.params.tolist() == sorted(REFERENCE_SIZES)
    assert data.references.tokens.notna().all()
