"""Sweeps on a real Dask cluster (``bayes_densing/distributed``): the same variants, bit for bit,
as in this process (subsets, and a sensitivity grid's run directories); a worker killed mid-fit;
an interrupted sweep resumed with only the missing fits; a resumed sweep of another input
refused; the `sbc` command; the sweep directory's contract.

Every cluster here is a real ``LocalCluster`` of 2 worker processes, started by the code under
test (``runner.executor``) or by the command line (``--workers 2``). The fits are the tiny
ones of conftest.py (2 chains × 60 draws) on 3 simulated benchmarks: 7 subsets. Both paths set
``sampler.cpu_devices = 2``, the same device layout as this process's fits of 2 chains, which
bitwise equality needs (docs/sweeps.md).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from bayes_densing.analyses.subsets import SubsetFamily, run_subsets
from bayes_densing.distributed import programs, runner, store
from bayes_densing.model.simulate import simulate, write as write_sim

from conftest import SMALL_ARGS
from test_cli import cli_executable

BENCHMARKS = ["arc_challenge", "hellaswag", "mmlu"]
WARM_TUNE = 20


@pytest.fixture(scope="module")
def synth3(tmp_path_factory):
    df, truth = simulate(n_models=12, n_benchmarks=3, doubling_months=3.3, seed=2)
    csv, _ = write_sim(df, truth, tmp_path_factory.mktemp("distributed") / "synth3.csv")
    assert sorted(df.benchmark.unique()) == BENCHMARKS
    return csv


def _config(small_config):
    return small_config(cpu_devices=2)


def _sweep(small_config, csv, out, place=None, **kw):
    return run_subsets(_config(small_config), BENCHMARKS, csv, warm_tune=WARM_TUNE, out=out,
                       place=place, **kw)


def _posteriors(out: Path) -> dict[str, bytes]:
    return {p.parent.name: p.read_bytes() for p in sorted((out / "variants").glob("*/posterior.npz"))}


@pytest.fixture(scope="module")
def in_process(synth3, small_config, tmp_path_factory):
    out = tmp_path_factory.mktemp("inproc") / "sweep"
    return _sweep(small_config, synth3, out), out


def test_a_sweep_on_two_workers_equals_the_in_process_sweep_variant_by_variant(
        in_process, synth3, small_config, tmp_path):
    table, out = in_process
    with runner.executor(workers=2, say=lambda _: None) as place:
        on_dask = _sweep(small_config, synth3, tmp_path / "sweep", place=place)
    assert len(table) == 7 and list(on_dask.subset) == list(table.subset)
    ours, theirs = _posteriors(out), _posteriors(tmp_path / "sweep")
    assert len(ours) == 7 and ours == theirs                          # bit for bit
    cols = ["doubling_median", "hdi_low", "hdi_high", "rank_corr_with_all", "max_rhat"]
    assert table[cols].equals(on_dask[cols])
    assert len(set(on_dask.worker)) == 2 and os.getpid() not in set(on_dask.worker)
    assert set(table.worker) == {os.getpid()}
    # each worker built the program once, however many subsets it fitted (the one that did
    # not fit the all-benchmark subset built it meanwhile: programs.prime)
    docs = store.SweepStore(tmp_path / "sweep", _identity(tmp_path / "sweep")).done().values()
    built = {}
    for doc in docs:
        built[doc["pid"]] = max(built.get(doc["pid"], 0), doc["compile_total"]["programs"])
    assert sorted(built.values()) == [1, 1], built
    assert sum(doc["compile"]["programs"] for doc in docs) <= 2


def _identity(out: Path) -> dict:
    return json.loads((out / store.SWEEP).read_text())["identity"]


def test_a_worker_killed_mid_fit_is_replaced_and_the_sweep_completes_the_same(
        in_process, synth3, small_config, tmp_path, monkeypatch):
    """A worker is SIGKILLed once the test hook shows it has started a subset's fit (not the
    parent's); Dask runs its task again elsewhere and the results are those of this process."""
    _, out = in_process
    marks = tmp_path / "marks"
    marks.mkdir()
    monkeypatch.setenv(programs.STARTED_ENV, str(marks))   # inherited by the workers
    killed: list[int] = []

    def kill_first_child_fit():
        end = time.monotonic() + 300
        while time.monotonic() < end and not killed:
            for mark in sorted(marks.glob("started-*")):
                name = mark.read_text()
                if name != "+".join(BENCHMARKS):
                    pid = int(mark.name.split("-")[1])
                    os.kill(pid, signal.SIGKILL)
                    killed.append((pid, name))
                    return
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_first_child_fit, daemon=True)
    with runner.executor(workers=2, say=lambda _: None) as place:
        watcher.start()
        table = _sweep(small_config, synth3, tmp_path / "sweep", place=place)
    watcher.join(1)
    assert killed, "no worker was killed: the hook never marked a subset's fit"
    (pid, name), = killed
    assert table.set_index("subset").worker[name] != pid      # its fit was done again elsewhere
    assert _posteriors(tmp_path / "sweep") == _posteriors(out)


def test_an_interrupted_sweep_resumes_with_only_the_missing_fits(
        in_process, synth3, small_config, tmp_path, monkeypatch):
    """Ctrl-C (SIGINT) to `bayes-densing subsets --workers 2` after 3 subsets are written: it
    exits 130 and leaves complete variants only, its worker processes gone; the same command,
    in this process now, fits only the others, and all seven are the in-process sweep's."""
    import psutil

    exe = cli_executable()
    out = tmp_path / "sweep"
    args = [exe, "subsets", "--data", str(synth3), "--benchmarks", ",".join(BENCHMARKS),
            "--warm-tune", str(WARM_TUNE), "--out", str(out), *SMALL_ARGS,
            "--set", "sampler.cpu_devices=2"]
    args.remove("--quiet")
    proc = subprocess.Popen(args + ["--workers", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    end = time.monotonic() + 300
    while time.monotonic() < end and len(list((out / "variants").glob("*/result.json"))) < 3:
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.05)
    children = psutil.Process(proc.pid).children(recursive=True)
    assert len(children) >= 2                                   # the cluster's workers
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output
    assert "no partial output was left" in output
    psutil.wait_procs(children, timeout=30)
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    done = len(list((out / "variants").glob("*/result.json")))
    assert 3 <= done < 7
    assert not list(out.rglob(".*partial*"))                   # nothing half-written
    assert not (out / "manifest.json").exists()                 # no index of an unfinished sweep

    resumed = subprocess.run(args, capture_output=True, text=True, timeout=600,
                             env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert resumed.returncode == 0, resumed.stderr
    fitted = [line for line in resumed.stdout.splitlines() if line.startswith("[")]
    assert len(fitted) == 7 - done and fitted[-1].startswith(f"[{7 - done}/{7 - done};")
    assert _posteriors(out) == _posteriors(in_process[1])
    assert json.loads((out / "manifest.json").read_text())["kind"] == "subsets"


def test_a_resumed_sweep_of_another_input_or_config_is_refused(in_process, synth3,
                                                               small_config, tmp_path):
    import shutil

    _, done = in_process
    out = tmp_path / "sweep"
    shutil.copytree(done, out)
    changed = tmp_path / "changed.csv"
    text = Path(synth3).read_text().splitlines()
    changed.write_text("\n".join(text[:-1]) + "\n")             # one score fewer
    with pytest.raises(store.SweepMismatch, match="the input data"):
        _sweep(small_config, changed, out)
    cfg = _config(small_config)
    cfg.set("priors.slope_sd", 0.7)
    with pytest.raises(store.SweepMismatch, match="config.priors.slope_sd: 0.3 then, 0.7 now"):
        run_subsets(cfg, BENCHMARKS, synth3, warm_tune=WARM_TUNE, out=out)
    # the same settings on another device layout resume (nothing left to fit)
    calls = []
    fit = SubsetFamily.fit
    SubsetFamily.fit = lambda self, *a: calls.append(1) or fit(self, *a)
    try:
        table = run_subsets(small_config(cpu_devices=4), BENCHMARKS, synth3,
                            warm_tune=WARM_TUNE, out=out)
    finally:
        SubsetFamily.fit = fit
    assert calls == [] and len(table) == 7


# --- the sweep directory, without fits ----------------------------------------------------------

def _outcome(name, value=1.0, error=""):
    return programs.Outcome(name=name, record={"value": value}, error=error,
                            arrays={"posterior": {"x": np.arange(3.0) * value}}, pid=1)


def test_the_store_publishes_whole_variants_and_reads_them_back(tmp_path):
    ident = store.identity("test", {"a": 1}, "sha")
    sweep = store.SweepStore(tmp_path / "s", ident)
    sweep.write(_outcome("x+y"))
    sweep.write(_outcome("dataset 3", 2.0))
    (tmp_path / "s" / "variants" / "half").mkdir()            # a directory without result.json
    assert set(sweep.done()) == {"x+y", "dataset 3"}
    np.testing.assert_array_equal(sweep.arrays("dataset 3", "posterior")["x"], [0, 2, 4])
    assert store.dir_name("x+y") == "x+y"
    assert store.dir_name("dataset 3") != store.dir_name("dataset_3")   # never shared
    assert not list((tmp_path / "s").rglob(".*partial*"))
    again = store.SweepStore(tmp_path / "s", ident)               # resumed
    assert set(again.done()) == {"x+y", "dataset 3"}
    fresh = store.SweepStore(tmp_path / "s", ident, force=True)   # discarded
    assert fresh.done() == {}


def test_the_store_refuses_another_sweep_and_a_directory_that_is_not_one(tmp_path):
    store.SweepStore(tmp_path / "s", store.identity("subsets", {"a": 1}, "sha"), spec={"a": 1})
    with pytest.raises(store.SweepMismatch, match=r"the command .*a: 1 then, 2 now"):
        store.SweepStore(tmp_path / "s", store.identity("sbc", {"a": 2}, "sha"), spec={"a": 2})
    with pytest.raises(store.SweepMismatch, match="bayes-densing version"):
        ident = {**store.identity("subsets", {"a": 1}, "sha"), "bayes_densing": "0.0.1"}
        store.SweepStore(tmp_path / "s", ident, spec={"a": 1})
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(store.rundir.RunDirError, match="not a resumable sweep"):
        store.SweepStore(tmp_path / "other", store.identity("subsets", {}, ""))


def test_the_layout_is_not_part_of_a_sweeps_identity(small_config):
    a, b = small_config(), small_config(cpu_devices=1)
    b.sampler.chain_method = "vectorized"
    assert store.config_spec(a) == store.config_spec(b)
    b.sampler.seed = 9
    assert store.config_spec(a) != store.config_spec(b)


def test_bad_cluster_options_are_refused_before_anything_starts():
    from bayes_densing.config import ConfigError

    with pytest.raises(ConfigError, match="give one"):
        with runner.executor("tcp://127.0.0.1:1", 2):
            pass
    with pytest.raises(ConfigError, match="at least 1"):
        with runner.executor(None, 0):
            pass
    with pytest.raises(ConfigError, match="cannot connect"):
        with runner.executor("tcp://127.0.0.1:9", None, say=lambda _: None,
                             connect_timeout="2s"):
            pass


def test_a_local_cluster_shares_the_cores_out_as_host_devices():
    assert runner.devices_per_worker(2, cores=2) == 1
    assert runner.devices_per_worker(3, cores=16) == 5
    assert runner.devices_per_worker(8, cores=2) == 1


def test_the_sbc_command_ranks_each_dataset_and_a_rerun_fits_nothing(tmp_path):
    """`bayes-densing sbc`, in this process: 4 tiny datasets, their ranks and coverage in
    sbc.json, the histograms in sbc.png; the same command again finds every dataset done."""
    from typer.testing import CliRunner

    from bayes_densing.cli.app import app

    out = tmp_path / "sbc"
    args = ["sbc", "--datasets", "4", "--targets", "8", "--benchmarks", "2", "--chains", "2",
            "--draws", "60", "--tune", "60", "--ranks", "20", "--bins", "4", "--curves",
            "joint", "--out", str(out)]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert [line[:5] for line in first.output.splitlines() if line.startswith("[")] == [
        "[1/4;", "[2/4;", "[3/4;", "[4/4;"]
    assert "chi-square p (4 bins)" in first.output and "90% intervals of the slope A" in first.output
    doc = json.loads((out / "sbc.json").read_text())
    assert len(doc["ranks"]["slope A"]) == 4 and all(0 <= r < 20 for r in doc["ranks"]["slope A"])
    assert doc["coverage"]["A"]["n"] == 4 and (out / "sbc.png").stat().st_size > 10_000
    assert json.loads((out / "manifest.json").read_text())["kind"] == "sbc"
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and not [l for l in again.output.splitlines() if l.startswith("[")]
    assert json.loads((out / "sbc.json").read_text())["ranks"] == doc["ranks"]
    bad = CliRunner().invoke(app, args[:-2] + ["--ranks", "21", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "--ranks 21 must split into --bins 4" in bad.output


def test_a_sensitivity_grid_on_two_workers_writes_the_same_runs(synth, small_config, tmp_path):
    """The base (its own program) and a prior variant (on the program shared by priors, D0
    and seed): each worker's run, sent back and written by the client as a run directory, is
    the in-process run's, draw for draw."""
    import arviz as az

    from bayes_densing.analyses.sensitivity import sensitivity

    runs = {}
    for mode, workers in (("in", None), ("dask", 2)):
        with runner.executor(workers=workers, say=lambda _: None) as place:
            result = sensitivity(_config(small_config), ["priors.slope_sd=1.0"], synth.csv,
                                 out=tmp_path / mode, prior_scaling=False, quiet=True,
                                 place=place)
        runs[mode] = result
    for name in ("base", "priors.slope_sd=1.0"):
        a, b = (az.from_netcdf(tmp_path / mode / "variants" / name / "posterior.nc")
                for mode in ("in", "dask"))
        np.testing.assert_array_equal(a.posterior["A"].values, b.posterior["A"].values)
        assert "log_likelihood" in b.children and "posterior_predictive" in b.children
    assert runs["in"].table.median_months.tolist() == runs["dask"].table.median_months.tolist()
    pids = {json.loads((tmp_path / "dask" / "variants" / n / "result.json").read_text())["pid"]
            for n in ("base", "priors.slope_sd=1.0")}
    assert os.getpid() not in pids
