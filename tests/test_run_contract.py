"""The run-directory contract (rundir.py), with each fault injected for real through the console
script: two writers racing for one --out, a full filesystem, SIGKILL between the last write and
the rename, and damaged copies of every core file for every command that reads a run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from bayes_densing.results import rundir
from test_cli import cli_executable

READERS = ("claim", "plot", "report", "influence")
ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}


def _run(args, timeout=300, env=None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([cli_executable(), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env or ENV, cwd=cwd)


def _start(args, env) -> subprocess.Popen:
    return subprocess.Popen([cli_executable(), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _sample_args(synth, small_args, out) -> list:
    return ["sample", "--data", synth.csv, *small_args, "--no-figures", "--allow-warnings",
            "--out", out]


def _one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr[-3000:]
    return errors[0]


def _wait_for_arrivals(barrier: Path, n: int, procs, timeout=300) -> None:
    end = time.monotonic() + timeout
    while len(list(barrier.glob("arrived-*"))) < n:
        for p in procs:
            assert p.poll() is None, p.communicate()
        assert time.monotonic() < end, "the writers never reached the rename"
        time.sleep(0.1)


# --- two writers, one --out ---------------------------------------------------------------------

def test_two_writers_one_out_keep_both_runs(tmp_path, synth, small_args, leftovers):
    """Both processes are held at a barrier just before the rename, then released together:
    exactly one run is in place, the other is kept whole under a printed name with exit 4."""
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    out = tmp_path / "same"
    env = {**ENV, rundir.BARRIER_ENV: f"{barrier}:2"}
    procs = [_start(_sample_args(synth, small_args, out), env) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 4], outputs
    assert len(list(barrier.glob("arrived-*"))) == 2            # both reached the rename
    winner, loser = (outputs[0], outputs[1]) if procs[0].returncode == 0 else (outputs[1], outputs[0])
    assert f"Run written to {out}/" in winner[0]
    line = _one_error_line(loser[1])
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("same.conflict-")]
    assert len(kept) == 1 and f"kept whole at {kept[0]}" in line
    assert "Doubling time of density" in loser[0]               # its summary is still shown
    assert rundir.verify(out)["kind"] == "run"
    assert rundir.verify(kept[0])["kind"] == "run"
    assert leftovers(out) == []


def test_a_default_name_taken_meanwhile_moves_to_the_next(tmp_path):
    """The default --out (runs/sample-YYYYMMDD-HHMMSS) of two runs started in the same second:
    the second to finish takes NAME-2 instead of conflicting."""
    out = tmp_path / "sample-20261203-120000"
    where: list[Path] = []
    with rundir.atomic_dir(out, unique=True, where=where) as tmp:
        out.mkdir()                                   # another run published it meanwhile
        (out / "theirs.txt").write_text("theirs")
        (tmp / "mine.txt").write_text("mine")
    assert where == [tmp_path / "sample-20261203-120000-2"]
    assert (out / "theirs.txt").exists() and (where[0] / "mine.txt").exists()


def test_without_force_a_rename_never_replaces_a_run(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(rundir.OutputConflict) as caught:
        with rundir.atomic_dir(out) as tmp:
            out.mkdir()
            (out / "theirs.txt").write_text("theirs")
            (tmp / "mine.txt").write_text("mine")
    assert (out / "theirs.txt").read_text() == "theirs"
    assert (caught.value.kept / "mine.txt").read_text() == "mine"
    assert caught.value.exit_code == 4


# --- a full filesystem --------------------------------------------------------------------------

def _unshare_works() -> bool:
    try:
        return subprocess.run(["unshare", "-rm", "true"], capture_output=True,
                              timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


needs_unshare = pytest.mark.skipif(not _unshare_works(),
                                   reason="needs `unshare -rm` (unprivileged user namespaces)")


def _in_small_tmpfs(mount: Path, size: str, command: list, timeout=300):
    """Run ``command`` in a private mount namespace where ``mount`` is a tmpfs of ``size``: a
    real ENOSPC reaches every layer (HDF5's C writes included), not a Python-level OSError."""
    script = (f'mount -t tmpfs -o size={size} tmpfs "$1" && shift && "$@"; rc=$?; '
              f'ls -A "{mount}" > "{mount}.left"; exit $rc')
    mount.mkdir(exist_ok=True)
    return subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", str(mount), *map(str, command)],
                          capture_output=True, text=True, timeout=timeout, env=ENV)


@needs_unshare
def test_a_full_disk_while_writing_the_posterior(tmp_path, synth, small_args):
    mount = tmp_path / "small"
    done = _in_small_tmpfs(mount, "64k", [cli_executable(), *_sample_args(synth, small_args,
                                                                           mount / "run")])
    assert done.returncode == 5, done.stderr[-3000:]
    line = _one_error_line(done.stderr)
    assert f"{mount / 'run'}: cannot write (no space left on the device)" in line
    assert (tmp_path / "small.left").read_text() == ""          # nothing partial left


@needs_unshare
def test_a_full_disk_while_redrawing_figures_keeps_the_old_ones(tmp_path, lib_run):
    """`plot` on a run whose filesystem has no room for new figures: exit 5, and the run and
    its figures are as they were."""
    mount = tmp_path / "small"
    mount.mkdir()
    size = sum(f.stat().st_size for f in lib_run.out.rglob("*") if f.is_file())
    script = (f'mount -t tmpfs -o size={size // 1024 + 256}k tmpfs "{mount}" && '
              f'cp -r "{lib_run.out}" "{mount}/run" && '
              f'"{cli_executable()}" plot "{mount}/run"; rc=$?; '
              f'cd "{mount}/run" && sha256sum $(find . -type f | sort) > "{tmp_path}/after"; exit $rc')
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True,
                          timeout=300, env=ENV)
    assert done.returncode == 5, done.stderr[-3000:]
    assert "no space left on the device" in _one_error_line(done.stderr)
    before = subprocess.run(f'cd "{lib_run.out}" && sha256sum $(find . -type f | sort)',
                            shell=True, capture_output=True, text=True).stdout
    assert (tmp_path / "after").read_text() == before


# --- SIGKILL between the last write and the rename ----------------------------------------------

def test_sigkill_before_the_rename_is_cleaned_up_by_the_next_command(tmp_path, synth, small_args,
                                                                      leftovers):
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    out = tmp_path / "run"
    env = {**ENV, rundir.BARRIER_ENV: f"{barrier}:2"}       # a second writer that never comes
    proc = _start(_sample_args(synth, small_args, out), env)
    try:
        _wait_for_arrivals(barrier, 1, [proc])
        (partial,) = leftovers(out)
        assert rundir.verify(partial)["kind"] == "run"       # complete: only the rename is left
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.communicate()
    assert not out.exists() and partial.exists()
    done = _run(["claim", out])
    assert done.returncode == 2
    assert f"note: removed {partial.name}, left by killed process {proc.pid}" in done.stderr
    assert "no such run directory" in _one_error_line(done.stderr)
    assert leftovers(out) == []


def test_another_hosts_live_run_is_never_taken_for_stale(tmp_path, capsys):
    out = tmp_path / "run"
    theirs = tmp_path / f".run.partial-{os.getpid() + 1}@other-host.example+0123abcd-x1"
    dead_here = tmp_path / f".run.partial-{_dead_pid()}@{rundir.HOST}+{rundir.BOOT}-x2"
    rebooted = tmp_path / f".run.partial-{os.getpid()}@{rundir.HOST}+ffffffff-x3"
    for p in (theirs, dead_here, rebooted):
        p.mkdir()
    rundir.check_out_dir(out, force=False)
    assert theirs.exists() and not dead_here.exists() and not rebooted.exists()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


# --- damaged run directories -------------------------------------------------------------------

def _damage(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(bytes(data[: len(data) // 2]))
    else:                                                     # one bit, in the middle
        data[len(data) // 2] ^= 0x10
        path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["truncated", "bit-flipped"])
@pytest.mark.parametrize("name", [*rundir.RUN_CORE, rundir.MANIFEST])
def test_every_reader_refuses_a_damaged_core_file(lib_run, tmp_path, name, how):
    run = tmp_path / "run"
    shutil.copytree(lib_run.out, run)
    _damage(run / name, how)
    before = sorted(p.name for p in run.rglob("*"))
    procs = {command: _start([command, run], ENV) for command in READERS}
    for command, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 2, (command, stdout[-2000:], stderr[-2000:])
        line = _one_error_line(stderr)
        assert str(run / name) in line and "damaged" in line, (command, line)
        assert "re-run " in line, line
    assert sorted(p.name for p in run.rglob("*")) == before    # nothing was written


def test_a_missing_core_file_and_a_run_without_manifest_are_refused(lib_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(lib_run.out, run)
    (run / "trend.csv").unlink()
    with pytest.raises(rundir.RunDirError, match=r"trend.csv: missing from the run"):
        rundir.verify(run)
    shutil.copy(lib_run.out / "trend.csv", run / "trend.csv")
    (run / rundir.MANIFEST).unlink()                          # as bayes-densing 0.1 wrote runs
    with pytest.raises(rundir.RunDirError, match="no manifest.json: written by bayes-densing 0.1"):
        rundir.verify(run)


def test_a_run_is_parsed_from_the_bytes_that_were_verified(lib_run, tmp_path, monkeypatch):
    """Run.load reads each core file once: a file replaced after its check is not what it
    parses (the bytes it checked are), and a damaged one is refused before any parsing."""
    from bayes_densing import results

    run = tmp_path / "run"
    shutil.copytree(lib_run.out, run)
    files = rundir.read_verified(run)
    assert set(files) == set(rundir.RUN_CORE)
    assert all(files[n] == (run / n).read_bytes() for n in files)
    real = rundir.read_verified

    def then_swapped(directory, kind="run"):
        read = real(directory, kind)
        (Path(directory) / "trend.csv").write_text("parameter,median\nA,99\n")
        return read

    monkeypatch.setattr(rundir, "read_verified", then_swapped)
    loaded = results.Run.load(run)
    pd.testing.assert_frame_equal(loaded.trend, lib_run.result.trend, check_dtype=False)
    assert loaded.directory == run and loaded.config.to_dict() == lib_run.result.config.to_dict()
    monkeypatch.setattr(rundir, "read_verified", real)
    with pytest.raises(rundir.RunDirError, match="trend.csv: damaged"):
        results.Run.load(run)


def test_an_unknown_format_is_refused_not_misread(lib_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(lib_run.out, run)
    doc = json.loads((run / rundir.MANIFEST).read_text())
    doc.update(format_version=rundir.FORMAT_VERSION + 1, bayes_densing="9.0.0")
    (run / rundir.MANIFEST).write_text(json.dumps(doc))
    done = _run(["claim", run])
    assert done.returncode == 2
    line = _one_error_line(done.stderr)
    assert "written by bayes-densing 9.0.0" in line and "reads version 1 only: re-run" in line


def test_a_damaged_figure_is_redrawn_not_fatal(lib_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(lib_run.out, run)
    _damage(run / "figures" / "density.png", "bit-flipped")
    (run / "figures" / "ppc.svg").unlink()
    done = _run(["report", run], timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "figures are missing or damaged: drawing them" in done.stderr
    from bayes_densing.figures.run_set import figures_ok

    assert figures_ok(run) and (run / "figures" / "ppc.svg").exists()
    assert rundir.derived_ok(run, ["report.md", "report.html"])
