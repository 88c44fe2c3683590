"""Tasks without reference scores: the data checks, no feedback into the main fit, and a
small recovery of the models seen only there (the ≥ 100-seed version:
benchmarks/two_sources.py)."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayes_densing import results, sequential, simulate
from bayes_densing.config import Config
from bayes_densing.data import DataError, assemble, read_scores
from bayes_densing.run import fit


def _read(df, tmp_path, name="scores.csv"):
    path = tmp_path / name
    df.to_csv(path, index=False)
    return read_scores(path)[0]


def _config():
    config = Config()
    config.data.reference = "SimRef"
    return config


def test_unanchored_tasks_stay_out_of_the_main_fit(tmp_path):
    df, truth = simulate.two_sources(3)
    data = assemble(_read(df, tmp_path), _config(), source="x")
    assert data.benchmarks == ["arc_challenge@h1", "hellaswag@h1", "mmlu@h1"]
    assert sequential.tasks(data) == ["winogrande@h2"]
    assert sorted(sequential.shared_models(data)) == sorted(truth["shared"])
    assert list(sequential.only_unanchored(data).model) == sorted(
        truth["only"], key=lambda m: (df[df.model == m].release_date.iloc[0], m))
    # no feedback: the main fit's data are exactly those of the file without the task
    alone = assemble(_read(df[df.source == "h1"], tmp_path, "h1.csv"), _config(), source="x")
    pd.testing.assert_frame_equal(data.obs, alone.obs)
    pd.testing.assert_frame_equal(data.models, alone.models)


def test_a_task_with_too_few_shared_models_is_refused(tmp_path):
    df, truth = simulate.two_sources(3)
    drop = truth["shared"][:4]
    df = df[~((df.source == "h2") & df.model.isin(drop))]
    with pytest.raises(DataError, match=r"column 'benchmark': task 'winogrande@h2' has no "
                                        r"reference scores, and 4 of its models have effective "
                                        r"sizes from the other tasks .*at least 5"):
        assemble(_read(df, tmp_path), _config(), source="x")


def test_models_seen_only_in_the_second_source_are_recovered(tmp_path):
    df, truth = simulate.two_sources(11)
    path = tmp_path / "scores.csv"
    df.to_csv(path, index=False)
    config = Config()
    config.sampler.chains, config.sampler.draws, config.sampler.tune = 2, 500, 500
    res = fit(config, path, progressbar=False)
    d = res.diagnostics["unanchored"]
    assert d["divergences"] == 0 and d["max_rhat"] < 1.02
    eta = res.idata.posterior[sequential.PREFIX + "log_effective_size"]
    covered = 0
    for m in truth["only"]:
        lo, hi = results.hdi(eta.sel(unanchored_model=m).values.ravel())
        covered += lo <= truth["targets"][m]["log_effective_size"] <= hi
    # six 90% intervals: at most 2 covering has probability 0.0013 for calibrated,
    # independent intervals (the false-alarm rate of this check)
    assert stats.binom.cdf(2, 6, 0.9) < 0.002
    assert covered >= 3
    assert "Tasks without reference scores" in res.summary
    table = pd.DataFrame(d["table"])
    assert set(table.name[table.kind == "model"]) == set(truth["only"])
    assert np.isfinite(table.effective_params[table.kind == "model"]).all()
