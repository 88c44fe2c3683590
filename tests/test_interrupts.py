"""Ctrl-C and kill: the real console script is signalled mid-sampling and must stop at once,
with exit code 128 + signal and no partial output; SIGKILL's leftovers are cleared by the next
run; and the interrupt path deletes a directory that is being written."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import pytest

from bayes_densing import interrupts
from bayes_densing.results import rundir
from bayes_densing import results
from test_cli import cli_executable


def _start(args, stderr_seen: list[bytes]) -> subprocess.Popen:
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})

    def pump():
        while chunk := proc.stderr.read1(4096):
            stderr_seen.append(chunk)

    threading.Thread(target=pump, daemon=True).start()
    return proc


def _wait_for(text: bytes, seen: list[bytes], proc, timeout: float) -> None:
    end = time.monotonic() + timeout
    while text not in b"".join(seen):
        assert proc.poll() is None, (b"".join(seen)[-2000:], proc.stdout.read())
        assert time.monotonic() < end, f"no {text!r} on stderr after {timeout} s"
        time.sleep(0.2)


@pytest.mark.parametrize("signum, force", [(signal.SIGINT, False), (signal.SIGTERM, True)],
                         ids=["SIGINT-new-out", "SIGTERM-force-over-old-run"])
def test_a_signal_mid_sampling_stops_the_run_and_leaves_nothing(signum, force, tmp_path, synth,
                                                               leftovers):
    """SIGINT (Ctrl-C) into a fresh --out, the default cut stopped in its curve fit; SIGTERM
    (plain `kill`) into --force over an old run, which must survive untouched, the joint."""
    exe = cli_executable()
    out = tmp_path / "run"
    if force:
        out.mkdir()
        (out / "keep.txt").write_text("old run")
    # a warm-up of 200,000 iterations, several minutes here (20,000 + 20,000 took 40 s in all
    # by 2026-11-24 and could end before the signal); chunks of 1,000 iterations, under a second
    args = [exe, "sample", "--data", str(synth.csv), "--chains", "2", "--draws", "20000",
            "--tune", "200000", "--set", "model.data_term=off", "--no-figures", "--out", str(out),
            *(["--force", "--curves", "joint"] if force else [])]
    seen: list[bytes] = []
    proc = _start(args, seen)
    try:
        _wait_for(b"Sampling ", seen, proc, timeout=120)   # run.fit, just before sampling
        # the progress bar's first update (also with $CI set and stderr a pipe): the first
        # chunk of 1,000 warm-up iterations is done, so the chains are running
        _wait_for(b"warm-up]", seen, proc, timeout=120)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        sent = time.monotonic()
        proc.send_signal(signum)
        rc = proc.wait(timeout=60)
        waited = time.monotonic() - sent
    finally:
        proc.kill()
    stderr = b"".join(seen).decode(errors="replace")
    assert rc == 128 + signum, stderr[-2000:]
    assert waited < 20, f"took {waited:.1f} s to stop"        # not at the end of 220,000 iterations
    assert f"interrupted ({signal.Signals(signum).name})" in stderr
    assert b"Doubling time" not in proc.stdout.read()
    if force:
        assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    else:
        assert not out.exists()
    assert leftovers(out) == []


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_sigkill_leftovers_are_cleared_by_the_next_run(tmp_path, leftovers, capsys):
    """SIGKILL cannot be caught: a killed writer can leave its hidden temporary directory, or
    (killed between the two renames of --force) the previous run moved aside."""
    out = tmp_path / "run"
    pid = _dead_pid()
    dead = f"{pid}@{rundir.HOST}+{rundir.BOOT}"
    partial = tmp_path / f".run.partial-{dead}-abc123"
    partial.mkdir()
    (partial / "posterior.nc").write_text("half")
    moved = tmp_path / f".run.old-{dead}"
    moved.mkdir()
    (moved / "keep.txt").write_text("old run")
    mine = tmp_path / f".run.partial-{rundir.owner()}-live"     # a live writer's: untouched
    mine.mkdir()

    with pytest.raises(results.RunDirError, match="already exists"):
        results.check_out_dir(out, force=False)        # the old run is back, so it is refused
    assert (out / "keep.txt").read_text() == "old run"
    assert not partial.exists() and not moved.exists() and mine.exists()
    notes = capsys.readouterr().err
    assert f"removed .run.partial-{dead}-abc123, left by killed process {pid}" in notes
    assert f"restored run from .run.old-{dead}" in notes
    mine.rmdir()
    assert leftovers(out) == []


def test_stop_deletes_the_directory_being_written(tmp_path, leftovers):
    out = tmp_path / "run"
    codes = []

    def fake_exit(code):
        codes.append(code)
        raise SystemExit(code)

    try:
        with pytest.raises(SystemExit):
            with results.atomic_dir(out) as tmp:
                (tmp / "posterior.nc").write_text("half written")
                interrupts.stop(signal.SIGTERM, exit=fake_exit)
    finally:
        interrupts.LOCK.release()          # stop() keeps it: the process would be gone
    assert codes == [143]
    assert not out.exists() and leftovers(out) == []
    assert list(tmp_path.iterdir()) == []
