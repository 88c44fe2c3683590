"""The benchmark rule (analyses/benchmark_rule.py): each criterion on hand-made tables, the
inversion it judges identification by, and one small curve fit on a synthetic dataset with a
benchmark that scales and one that is flat, through the `bayes-densing benchmarks` command.
The same synthetic check over 200 seeds: benchmarks/benchmark_rule.py."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayes_densing.model import laws
from bayes_densing.analyses import benchmark_rule as rule
from bayes_densing.cli.app import app
from bayes_densing.config import Config

SIZES = [0.5, 1.8, 4, 7, 14, 32, 72, 110]


# --- criterion 3: the references are monotone up to noise ---------------------------------------

def test_rising_references_pass_and_report_their_smallest_rise():
    scores = [0.30, 0.35, 0.42, 0.50, 0.55, 0.61, 0.66, 0.70]
    assert rule.refs_monotone(SIZES, scores, 1319)
    drop, z, at = rule.largest_drop(SIZES, scores, 1319)
    assert drop == pytest.approx(-0.04) and z < 0 and at == 6


def test_a_fall_past_three_standard_errors_fails():
    # Qwen2.5 on Swallow's GSM8K: 0.832 at 7B, 0.718 at 32B (1,319 items): 6.9 SE
    sizes, scores = [0.5, 1.5, 3, 7, 14, 32, 72], [0.34, 0.61, 0.58, 0.83, 0.79, 0.72, 0.87]
    assert not rule.refs_monotone(sizes, scores, 1319)
    drop, z, at = rule.largest_drop(sizes, scores, 1319)
    se = math.sqrt((0.79 * 0.21 + 0.72 * 0.28) / 1319)
    assert (drop, z, at) == (pytest.approx(0.07), pytest.approx(0.07 / se), 4)


def test_the_order_is_by_size_not_by_row():
    shuffled = [7, 0.5, 110, 1.8, 32, 4, 72, 14]
    scores = dict(zip(SIZES, [0.30, 0.35, 0.42, 0.50, 0.55, 0.61, 0.66, 0.70]))
    assert rule.refs_monotone(shuffled, [scores[s] for s in shuffled], 1319)


def test_the_bound_is_three_standard_errors_or_the_floor_whichever_is_larger():
    # 817 items at p ≈ 0.5: the difference's SE is 0.0247, so 3 SE = 0.074 > the floor
    assert rule.refs_monotone([1, 2], [0.50, 0.44], 817)
    assert not rule.refs_monotone([1, 2], [0.50, 0.42], 817)
    # 14,042 items: 3 SE = 0.018 < the floor 0.03, which decides
    assert rule.refs_monotone([1, 2], [0.60, 0.575], 14042)
    assert not rule.refs_monotone([1, 2], [0.60, 0.565], 14042)


def test_a_single_reference_cannot_show_monotonicity():
    assert not rule.refs_monotone([7], [0.5], 1000)


# --- criterion 2: the targets' scores rise with size -----------------------------------------

def test_scores_falling_with_size_fail_and_rising_pass():
    rng = np.random.default_rng(0)
    n = np.exp(rng.uniform(np.log(0.5), np.log(70), 30))
    rising = 0.3 + 0.05 * np.log(n) + rng.normal(0, 0.02, 30)
    assert rule.targets_rise(n, rising)
    assert not rule.targets_rise(n, 1.0 - rising)          # Spearman about −0.9
    assert not rule.targets_rise(n, np.full(30, 0.4))      # constant: no correlation


def test_spearman_needs_three_pairs():
    assert math.isnan(rule.spearman([1, 2], [1, 2]))
    assert rule.spearman([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)


# --- criterion 1: identification -------------------------------------------------------------

def test_either_the_gain_or_the_width_identifies():
    assert rule.identified(gain_q05=1.2, log_size_width=5.0)
    assert rule.identified(gain_q05=0.3, log_size_width=1.0)
    assert not rule.identified(gain_q05=0.9, log_size_width=math.log(4) + 0.01)
    assert not rule.identified(gain_q05=0.9, log_size_width=math.inf)


def test_borderline_when_the_deciding_statistic_is_within_its_error():
    # passed by the gain alone, 0.01 past its bound with an error of 0.04: borderline
    assert rule.near_bound((0.01, 0.04), (-1.6, 0.2))
    # passed firmly by either route: not borderline, however near the other
    assert not rule.near_bound((0.01, 0.04), (0.9, 0.2))
    assert not rule.near_bound((1.5, 0.04), (-0.01, 0.2))
    # failed, one route near its bound: borderline; both far: not
    assert rule.near_bound((-0.02, 0.04), (-1.6, 0.2))
    assert not rule.near_bound((-0.5, 0.04), (-1.6, 0.2))


def test_interval_width_is_infinite_when_draws_are():
    x = np.stack([np.linspace(0, 1, 101), np.r_[np.linspace(0, 1, 95), [np.inf] * 6]], axis=1)
    width = rule.interval_width(x)
    assert width[0] == pytest.approx(0.9, abs=0.011) and width[1] == np.inf


def test_log_effective_size_inverts_a_reference_curve():
    """The score of a reference-family model of size 7 on a curve draw maps back to ln 7;
    a score past the ceiling to +∞ and one below chance to −∞."""
    data = rule.synthetic(0)
    config = Config()
    draws = {"z_centre": np.array([[0.2, -0.4], [0.1, 0.3]]),
             "z_gain": np.array([[3.0, 2.0], [4.0, 1.5]]),
             "alpha": np.array([[0.3, 0.25], [0.35, 0.3]]),
             "b": np.array([0.5, 0.4]), "beta": np.array([0.28, 0.3])}
    from bayes_densing.model.curves import curve_parameters

    refs = data.references.params.to_numpy(dtype=float)
    coefs, l, gamma, c = curve_parameters(draws, refs, data.chance, 1.0, xp=np)
    loss = laws.loss_law(7.0, 1.0, **coefs)
    score = laws.performance(loss, c, gamma, l, data.chance)         # (draw, benchmark)
    for i in range(2):
        eta = rule.log_effective_size(draws, data, config, score[i])
        assert eta[i] == pytest.approx(np.log([7.0, 7.0]))
    edges = rule.log_effective_size(draws, data, config, [1.0, 0.1])
    assert np.all(edges[:, 0] == np.inf) and np.all(edges[:, 1] == -np.inf)


# --- the table and its text ------------------------------------------------------------------

def hand_table() -> pd.DataFrame:
    rows = [dict(benchmark="scales", n_refs=8, n_targets=40, refs_spearman=1.0,
                 targets_spearman=0.8, ref_drop=-0.01, ref_drop_se=-1.0, ref_drop_at="7B→14B",
                 gain_q05=3.0, median_target_score=0.5, log_size_width=0.4, identified=True,
                 targets_rise=True, refs_monotone=True, verdict="in", borderline=False),
            dict(benchmark="flat", n_refs=8, n_targets=40, refs_spearman=0.2,
                 targets_spearman=0.1, ref_drop=0.07, ref_drop_se=3.5, ref_drop_at="1B→2B",
                 gain_q05=0.02, median_target_score=0.45, log_size_width=math.inf,
                 identified=False, targets_rise=False, refs_monotone=False, verdict="out",
                 borderline=False),
            dict(benchmark="edge", n_refs=8, n_targets=40, refs_spearman=0.8,
                 targets_spearman=0.7, ref_drop=0.01, ref_drop_se=0.5, ref_drop_at="1B→2B",
                 gain_q05=1.01, median_target_score=0.3, log_size_width=3.0, identified=True,
                 targets_rise=True, refs_monotone=True, verdict="borderline", borderline=True)]
    return pd.DataFrame(rows, columns=list(rule.COLUMNS))


def test_text_lists_each_criterion_and_the_default_set():
    out = rule.text(hand_table())
    flat = next(line for line in out.splitlines() if line.startswith("flat"))
    assert flat.split()[-4:] == ["FAIL", "FAIL", "FAIL", "out"]
    assert "—" in flat                                        # the infinite width
    assert out.splitlines()[-2] == "Default set by the rule: scales"
    assert out.splitlines()[-1].startswith("Borderline, left out")
    assert out.splitlines()[-1].endswith(": edge")
    assert rule.default_set(hand_table()) == ["scales"]


# --- the rule on a synthetic dataset, through the command (one small curve fit) -------------

def test_the_rule_keeps_a_scaling_benchmark_and_drops_a_flat_one(tmp_path):
    """Seed 0 of benchmarks/benchmark_rule.py's design: its 200 seeds measure the rates (scaling
    kept, flat dropped); a single seed can fail by chance at about the missed rate."""
    path = tmp_path / "synthetic.csv"
    rule.synthetic_scores(0).to_csv(path, index=False)
    result = CliRunner().invoke(app, ["benchmarks", "--data", str(path), "--chains", "2",
                                      "--draws", "300", "--tune", "300", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    rows = {r["benchmark"]: r for r in out["benchmarks"]}
    assert out["default_set"] == ["mmlu"] and out["bounds"]["width_max"] == math.log(4)
    assert rows["mmlu"]["verdict"] == "in" and rows["flat"]["verdict"] == "out"
    assert not rows["mmlu"]["borderline"]
    assert rows["mmlu"]["gain_q05"] > rule.GAIN_MIN
    assert rows["mmlu"]["log_size_width"] < rule.WIDTH_MAX
    assert rows["mmlu"]["targets_spearman"] > 0.5 and rows["mmlu"]["refs_spearman"] > 0.9
    # the flat one is not identified (its gain's 5% quantile near 0) and does not rise
    assert not rows["flat"]["identified"] and rows["flat"]["gain_q05"] < 0.3
    assert not rows["flat"]["targets_rise"]
    assert (rows["mmlu"]["n_refs"], rows["mmlu"]["n_targets"]) == (8, 40)


# --- the command's bad input: one line, exit 2, before any fit -------------------------------

@pytest.mark.parametrize("args, message", [
    (["--dataset", "open-base-llms", "--data", "x.csv"], "not both"),
    (["--dataset", "nope"], "unknown dataset"),
    (["--data", "missing.csv"], "file not found"),
])
def test_bad_input_is_one_line(args, message, tmp_path):
    result = CliRunner().invoke(app, ["benchmarks", *args])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_a_reference_family_not_in_the_file_is_refused(tmp_path):
    path = tmp_path / "targets.csv"
    rule.synthetic_scores(0).drop(columns="role").to_csv(path, index=False)
    result = CliRunner().invoke(app, ["benchmarks", "--data", str(path), "--reference", "Nope"])
    assert result.exit_code == 2 and "Nope" in result.output


@pytest.mark.slow
def test_the_command_prints_the_table_of_the_bundled_dataset():
    result = CliRunner().invoke(app, ["benchmarks", "--dataset", "open-base-llms"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.strip()}
    for b in ("mmlu", "arc_challenge", "hellaswag", "winogrande", "truthfulqa", "gsm8k"):
        assert b in lines
    assert lines["truthfulqa"][-1] == "out" and lines["mmlu"][-1] == "in"
    assert "Default set by the rule:" in result.stdout


def test_a_file_of_targets_only_is_judged_against_the_reference_sample_borrows(tmp_path):
    """As `sample` does, the rule borrows the bundled reference family for a file without
    reference models, and its candidates are the tasks that family has scores on."""
    rows = [(f"m{i}", n, f"2024-0{i + 1}-01", b, s)
            for i, n in enumerate([0.5, 1.5, 3.0, 7.0, 14.0])
            for b, s in (("mmlu", 0.3 + 0.05 * i), ("hellaswag", 0.5 + 0.05 * i),
                         ("my_private_eval", 0.2 + 0.1 * i))]
    path = tmp_path / "mine.csv"
    pd.DataFrame(rows, columns=["model", "params", "release_date", "benchmark", "score"]
                 ).to_csv(path, index=False)
    data = rule.load_all(Config(), path)
    assert data.benchmarks == ["hellaswag", "mmlu"]
    assert set(data.references.family) == {"Qwen1.5"} and data.n_target == 5
