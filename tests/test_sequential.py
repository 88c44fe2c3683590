"""Tasks without reference scores: the data checks, no feedback into the main fit, and a
small recovery of the models seen only there (the ≥ 100-seed version:
benchmarks/two_sources.py)."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayes_densing import results
from bayes_densing.inference import sequential
from bayes_densing.model import simulate
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


def test_a_file_of_targets_only_anchors_its_own_harness_by_the_bundled_reference(tmp_path):
    """Targets only, scored on two bundled benchmarks and on a task of their own harness: the
    bundled Qwen1.5 models anchor the first two, and the third is anchored by the shared
    targets (it was dropped before), or dropped with a notice when too few of them span its
    sizes."""
    from bayes_densing.data import load

    sizes = {"a1": 1.1, "a2": 2.0, "a3": 3.0, "a4": 7.0, "a5": 14.0, "a6": 0.5}
    rows = []
    for i, (m, n) in enumerate(sizes.items()):
        date = f"2024-0{i + 1}-10"
        rows += [(m, n, date, "mmlu", 0.25 + 0.03 * np.log(n * 10), ""),
                 (m, n, date, "hellaswag", 0.4 + 0.04 * np.log(n * 10), "")]
        if m != "a6":
            rows.append((m, n, date, "triviaqa", 0.1 + 0.05 * np.log(n * 10), "myharness"))
    rows.append(("b1", 5.0, "2024-06-15", "triviaqa", 0.3, "myharness"))
    df = pd.DataFrame(rows, columns=["model", "params", "release_date", "benchmark", "score",
                                     "source"])
    path = tmp_path / "mine.csv"
    df.to_csv(path, index=False)
    data = load(Config(), path)
    assert set(data.benchmarks) == {"mmlu", "hellaswag"}
    assert set(data.references.family) == {"Qwen1.5"}
    assert sequential.tasks(data) == ["triviaqa@myharness"]
    assert list(sequential.only_unanchored(data).model) == ["b1"]
    # too few to anchor it: a borrowed reference drops the task, as before, and says why
    df[~((df.benchmark == "triviaqa") & df.model.isin(["a4", "a5"]))].to_csv(path, index=False)
    few = load(Config(), path)
    assert sequential.tasks(few) == [] and set(few.benchmarks) == {"mmlu", "hellaswag"}
    assert any("were dropped: triviaqa@myharness (3 model(s) also on them" in n
               for n in few.notices)


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
    # a model seen only there can be matched by a forecast, with its own effective size
    from bayes_densing.analyses.forecast import forecast

    run = results.Run(idata=res.idata, models=res.models, trend=res.trend,
                      diagnostics=res.diagnostics, config=res.config)
    only = truth["only"][0]
    match = forecast(run, params=7, match=only).reach[0]
    assert match.what == only
    assert match.needed_log_size["median"] == pytest.approx(
        float(np.median(eta.sel(unanchored_model=only).values)), rel=1e-6)
