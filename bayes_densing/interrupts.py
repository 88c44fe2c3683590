"""Ctrl-C and ``kill`` during a command: stop at once and leave nothing half-written.

While NumPyro samples, the main thread sits inside one XLA call for the whole run, and Python
runs a signal handler only when the main thread returns to the interpreter: a Ctrl-C would
wait for sampling to end, and the run would be written as if nothing had happened. So the console script (``cli.main``) blocks SIGINT and
SIGTERM in every thread and waits for them in a thread of its own, which

1. takes the lock that every directory rename holds (a rename in progress finishes first),
2. deletes the temporary directories registered by :func:`results.atomic_dir`,
3. says so on stderr and ends the process with 128 + the signal's number (130, 143).

A run directory appears only by a rename of a complete temporary one, so after this there is
either the whole run or nothing. SIGKILL cannot be caught: it can leave a hidden
``.NAME.partial-OWNER-*`` (or, mid-``--force``, ``.NAME.old-OWNER``) beside the output, which
the next command writing or reading there removes (or puts back) once that process is gone
(``rundir.clean_stale``). The lock is a thread lock: across processes the rename itself is
the arbiter (``rundir``).
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
from contextlib import contextmanager
from pathlib import Path

LOCK = threading.RLock()          # held by every rename of a finished directory into place
_PARTIAL: set[Path] = set()       # temporary directories being written
SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def registered(tmp: Path):
    """Mark ``tmp`` as being written: an interrupt deletes it."""
    with LOCK:
        _PARTIAL.add(tmp)
    try:
        yield tmp
    finally:
        with LOCK:
            _PARTIAL.discard(tmp)


def stop(signum: int, exit=os._exit) -> None:
    """Delete what is being written and end the process (``exit`` is replaceable in tests)."""
    import multiprocessing

    LOCK.acquire()            # never released: no rename may start after this
    for tmp in list(_PARTIAL):
        shutil.rmtree(tmp, ignore_errors=True)
    for child in multiprocessing.active_children():   # --sampler pymc's chain processes
        child.kill()
    name = signal.Signals(signum).name
    os.write(2, f"\ninterrupted ({name}): stopped; no partial output was left\n".encode())
    exit(128 + signum)


def install() -> bool:
    """Route SIGINT and SIGTERM to :func:`stop` (main thread only; before other threads start,
    which inherit the blocked mask). Returns whether it was installed."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "sigwait"):
        return False
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)

    def wait() -> None:
        stop(signal.sigwait(SIGNALS))

    threading.Thread(target=wait, name="bayes-densing-interrupts", daemon=True).start()
    return True
