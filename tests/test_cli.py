"""The ``bayes-densing`` command line: help, simulate, sample, datasets, exit codes 0 / 2 / 3."""

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bayes_densing.results import rundir
from bayes_densing.cli.app import app
from bayes_densing.data import DATASETS

RUN_FILES = {*rundir.RUN_CORE, rundir.MANIFEST}
FIGURED = RUN_FILES | {"figures", "report.md", "report.html", rundir.DERIVED}   # fit(figures=True)
WIDE = {"COLUMNS": "200"}


def invoke(args, **kwargs):
    return CliRunner().invoke(app, [str(a) for a in args], env=WIDE, **kwargs)


def cli_executable() -> str:
    exe = Path(sys.executable).with_name("bayes-densing")
    return str(exe) if exe.exists() else shutil.which("bayes-densing")


# --- help ----------------------------------------------------------------------------------------

def test_sample_help_shows_an_example():
    result = invoke(["sample", "--help"])
    assert result.exit_code == 0, result.output
    assert "bayes-densing sample --out" in result.stdout
    assert "--allow-warnings" in result.stdout and "--force" in result.stdout


@pytest.mark.parametrize("command", ["sample", "sensitivity", "subsets"])
def test_help_gives_the_sampler_length_defaults_from_the_config(command):
    import typer

    from bayes_densing.config import SamplerConfig

    s = SamplerConfig()
    options = {p.opts[0]: p.help or "" for p in typer.main.get_command(app).commands[command].params}
    for flag, default in [("--chains", s.chains), ("--draws", s.draws), ("--tune", s.tune),
                          ("--seed", s.seed)]:
        assert f"(default {default}" in options[flag], (flag, options[flag])
    assert "--chains" in invoke([command, "--help"]).stdout


def test_top_level_help_shows_an_example():
    result = invoke(["--help"])
    assert result.exit_code == 0, result.output
    assert "sample" in result.stdout and "simulate" in result.stdout
    assert "bayes-densing sample --out" in result.stdout


def test_no_arguments_shows_the_commands():
    result = invoke([])
    assert "sample" in result.output and "datasets" in result.output


# --- simulate -------------------------------------------------------------------------------------

def test_simulate_writes_csv_and_truth(tmp_path):
    out = tmp_path / "sim.csv"
    result = invoke(["simulate", "--out", out, "--models", 5, "--benchmarks", 2,
                     "--reference-models", 3, "--doubling-months", 4.0, "--seed", 3])
    assert result.exit_code == 0, result.output
    assert out.exists()
    truth_path = tmp_path / "sim.truth.json"
    assert truth_path.exists()
    truth = json.loads(truth_path.read_text())
    assert truth["doubling_months"] == 4.0
    assert truth["seed"] == 3
    assert len(truth["targets"]) == 5
    df = pd.read_csv(out)
    assert len(df) == (5 + 3) * 2
    assert df.drop_duplicates("model").role.value_counts().to_dict() == {"target": 5, "reference": 3}
    assert str(out) in result.stdout and "bayes-densing sample --data" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["--doubling-months", "-1"], "--doubling-months must be positive"),
    (["--benchmarks", "13"], "n_benchmarks must be in 1..12"),
    (["--models", "2"], "n_models must be at least 3"),
])
def test_simulate_bad_arguments_exit_2(tmp_path, args, message):
    out = tmp_path / "sim.csv"
    result = invoke(["simulate", "--out", out, *args])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {message}"), result.stderr
    assert list(tmp_path.iterdir()) == []


# --- sample: success --------------------------------------------------------------------------

def test_sample_succeeds_and_prints_the_doubling_time(cli_run):
    result = cli_run.result
    assert result.exit_code == 0, (result.output, result.exception)
    assert "Doubling time of density:" in result.stdout
    assert "months (90% HDI" in result.stdout
    assert f"Run written to {cli_run.out}/" in result.stdout
    assert "Diagnostics:" in result.stdout


def test_sample_writes_the_run_directory(cli_run, synth):
    assert cli_run.result.exit_code == 0, cli_run.result.output
    assert {p.name for p in cli_run.out.iterdir()} == FIGURED
    summary = (cli_run.out / "summary.txt").read_text()
    assert summary.startswith("Data: 12 target models")
    assert summary.strip() in cli_run.result.stdout
    config = tomllib.loads((cli_run.out / "config.toml").read_text())
    assert config["sampler"]["chains"] == 2 and config["sampler"]["draws"] == 60
    assert config["sampler"]["tune"] == 60 and config["sampler"]["seed"] == 0
    assert config["model"]["data_term"] == "off" and config["model"]["trend"] == "frontier"
    diag = json.loads((cli_run.out / "diagnostics.json").read_text())
    assert diag["chains"] == 2 and diag["draws"] == 60
    assert diag["input"] == str(synth.csv)
    assert diag["command"].startswith(f"bayes-densing sample --data {synth.csv}")
    assert "--chains 2" in diag["command"] and "--allow-warnings" in diag["command"]
    models = pd.read_csv(cli_run.out / "models.csv")
    assert len(models) == 12 + 8
    trend = pd.read_csv(cli_run.out / "trend.csv")
    assert {"A_per_month", "A_per_day", "doubling_months", "B"} <= set(trend.parameter)


# --- sample: bad input exits 2 and writes nothing ------------------------------------------------

def _no_release_date(workdir: Path, synth) -> Path:
    path = workdir / "no_release_date.csv"
    if not path.exists():
        synth.df.drop(columns="release_date").to_csv(path, index=False)
    return path


BAD_INPUT = {
    # case: (extra args, data file or None for the synthetic file, expected message after "error: ")
    "missing-file": ([], "missing", "{path}: file not found"),
    "no-release-date": ([], "no_release_date", "{path}: row 1 (header): missing required column release_date"),
    "unknown-reference": (["--reference", "NoSuchFamily"], "synth",
                          "{path}: column 'family': reference family 'NoSuchFamily' not found"),
    "unknown-preset": (["--model", "nosuchpreset"], "synth", "unknown model preset 'nosuchpreset'"),
    "invalid-trend": (["--trend", "sideways"], "synth",
                      "model.trend must be one of frontier, mean, envelope, changepoint; got 'sideways'"),
    "set-without-equals": (["--set", "priors.slope_sd"], "synth",
                           "--set 'priors.slope_sd': write KEY=VALUE"),
    "unknown-set-key": (["--set", "priors.nosuchkey=1"], "synth", "override: unknown key priors.nosuchkey"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_exits_2_and_writes_nothing(case, workdir, synth, small_args, no_sampling,
                                              leftovers):
    extra, which, expected = BAD_INPUT[case]
    path = {"missing": workdir / "does_not_exist.csv",
            "no_release_date": _no_release_date(workdir, synth),
            "synth": synth.csv}[which]
    out = workdir / f"bad-{case}"
    result = invoke(["sample", "--data", path, *small_args, *extra, "--out", out,
                     "--allow-warnings"])
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: " + expected.format(path=path)), lines[0]
    assert "Traceback" not in result.output
    assert "Doubling time" not in result.stdout
    assert not out.exists()
    assert leftovers(out) == []


def test_malformed_option_exits_2(workdir, no_sampling):
    out = workdir / "bad-malformed-option"
    result = invoke(["sample", "--chains", "two", "--out", out])
    assert result.exit_code == 2
    assert not out.exists()


# --- sample: existing --out ----------------------------------------------------------------------

def test_existing_out_is_refused_and_left_untouched(tmp_path, synth, small_args, no_sampling,
                                                     leftovers):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("old run")
    result = invoke(["sample", "--data", synth.csv, *small_args, "--out", out, "--allow-warnings"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {out} already exists"), result.stderr
    assert "--force" in lines[0]
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert (out / "keep.txt").read_text() == "old run"
    assert leftovers(out) == []


def test_force_replaces_an_existing_out(tmp_path, synth, small_args, replay_sampler, leftovers):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("old run")
    result = invoke(["sample", "--data", synth.csv, *small_args, "--no-figures", "--out", out, "--force",
                     "--allow-warnings"])
    assert result.exit_code == 0, (result.output, result.exception)
    assert replay_sampler["n"] == 1
    assert {p.name for p in out.iterdir()} == RUN_FILES          # keep.txt is gone
    assert "Doubling time of density:" in result.stdout
    assert leftovers(out) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


# --- datasets ------------------------------------------------------------------------------------

def test_the_entry_point_leaves_its_objects_to_the_os_at_exit(monkeypatch, capsys):
    """``main`` freezes the cyclic collector's objects as the command ends, so that Python's
    collections at exit do not walk them (1 s of the default fit on 2 cores), and keeps the
    command's exit code."""
    import gc

    from bayes_densing.cli import app as cli
    from bayes_densing import interrupts

    monkeypatch.setattr(sys, "argv", ["bayes-densing", "datasets"])
    monkeypatch.setattr(interrupts, "install", lambda: True)   # the test process's signals
    gc.unfreeze()
    try:
        with pytest.raises(SystemExit) as exit_:
            cli.main()
        assert exit_.value.code in (0, None)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    assert "open-base-llms" in capsys.readouterr().out


def test_the_fitting_commands_import_the_stack_with_the_collector_paused_then_frozen(monkeypatch):
    """``_import_stack`` (sample, sensitivity, subsets, influence): the collector is paused
    while PyMC, PyTensor, ArviZ and JAX are imported, their objects are frozen out of its
    reach, and it is running again afterwards, also when an import fails."""
    import builtins
    import gc

    from bayes_densing.cli import common as cli

    gc.unfreeze()
    try:
        cli.import_stack()
        assert gc.isenabled() and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
    real = builtins.__import__

    def failing(name, *args, **kwargs):
        if name == "jax":
            assert not gc.isenabled()          # paused while importing
            raise ImportError("no jax here")
        return real(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", failing)
    try:
        with pytest.raises(ImportError):
            cli.import_stack()
    finally:
        monkeypatch.undo()
        gc.unfreeze()
    assert gc.isenabled()


def test_datasets_lists_the_bundled_dataset_and_its_benchmarks():
    result = invoke(["datasets"])
    assert result.exit_code == 0, result.output
    assert "open-base-llms:" in result.stdout
    bench_line = next(line for line in result.stdout.splitlines()
                      if line.strip().startswith("benchmarks:"))
    listed = {b.strip() for b in bench_line.split(":", 1)[1].split(",")}
    assert set(DATASETS["open-base-llms"].benchmarks) <= listed
    assert "reference Qwen1.5" in result.stdout
    assert "models," in result.stdout and "scores, released" in result.stdout


# --- exit code 3 ---------------------------------------------------------------------------------

def test_failed_diagnostics_exit_3_and_still_write_the_run(workdir, synth):
    """A deliberately too-short run, through the real console script (real exit code, stderr)."""
    exe = cli_executable()
    assert exe, "the bayes-densing console script is not installed"
    out = workdir / "short_run"
    args = [exe, "sample", "--data", str(synth.csv), "--chains", "2", "--draws", "10",
            "--tune", "21", "--seed", "0", "--quiet", "--set", "model.data_term=off",
            "--no-figures", "--out", str(out)]
    cache = workdir / "jax-cache"
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONWARNINGS": "ignore",
                               "BAYES_DENSING_JAX_CACHE": str(cache)})
    assert proc.returncode == 3, (proc.stdout, proc.stderr)
    assert any(p.is_file() for p in cache.rglob("*"))   # the compiled programs were kept for next time
    assert "Doubling time of density:" in proc.stdout
    assert "Diagnostics: PROBLEMS" in proc.stdout
    assert "error: the sampler's diagnostics failed" in proc.stderr
    assert "error:" not in proc.stdout
    assert {p.name for p in out.iterdir()} == RUN_FILES
    diag = json.loads((out / "diagnostics.json").read_text())
    assert diag["problems"], diag
    assert diag["draws"] == 10
    assert diag["command"] == "bayes-densing " + " ".join(args[1:])   # as typed


# --- plot and report -------------------------------------------------------------------------

def test_plot_and_report_commands_on_a_copied_run(cli_run, tmp_path):
    import shutil

    assert cli_run.result.exit_code == 0, cli_run.result.output
    assert "report: " in cli_run.result.stdout and (cli_run.out / "report.html").exists()
    run = tmp_path / "run"
    shutil.copytree(cli_run.out, run)
    for name in ("figures", "report.md", "report.html"):
        shutil.rmtree(run / name) if name == "figures" else (run / name).unlink()
    result = invoke(["report", run])        # no figures yet: report draws them first
    assert result.exit_code == 0, (result.output, result.exception)
    assert (run / "figures" / "index.json").exists() and (run / "report.html").exists()
    assert "report.html" in result.stdout
    result = invoke(["plot", run])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "density.png" in result.stdout and "ppc.png" in result.stdout
    assert not list(tmp_path.glob(".figures.*"))


@pytest.mark.parametrize("command", ["plot", "report"])
def test_plot_and_report_refuse_a_directory_that_is_not_a_run(command, tmp_path):
    result = invoke([command, tmp_path / "nowhere"])
    assert result.exit_code == 2
    assert "error:" in result.stderr and "no such" in result.stderr
    assert not (tmp_path / "nowhere").exists()
