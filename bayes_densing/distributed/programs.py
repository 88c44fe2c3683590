"""What runs where the fits run (the command's own process, or a Dask worker): one compiled
program per family per process, reused by every task of that family, and the counters that
show it (programs built, XLA compilations, persistent-cache hits).

A task is :func:`run_batch` of a family and a batch of its variants. A family (``families.py``)
is a small picklable description (the data, the config, what varies) with a ``key`` that names
its program; :func:`program` builds it on the first task of that key in this process and keeps
it for the next, so a worker compiles each program once however many tasks it is sent.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

# the test hook: with this set to a directory, a process marks each variant it starts there
# (``started-<pid>-<n>``) so that a test can kill a worker while it is fitting
STARTED_ENV = "BAYES_DENSING_TEST_STARTED"
KEEP = 2          # compiled programs kept per process (each holds its XLA executables)

_PROGRAMS: OrderedDict = OrderedDict()
_LOCK = threading.Lock()


@dataclass
class Counters:
    """This process's compile work so far: programs built (``Family.compile``), XLA backend
    compilations and their seconds, persistent-cache requests and hits."""

    programs: int = 0
    program_s: float = 0.0
    xla_compiles: int = 0
    xla_compile_s: float = 0.0
    cache_requests: int = 0
    cache_hits: int = 0

    def since(self, other: "Counters") -> dict:
        return {k: getattr(self, k) - getattr(other, k) for k in self.__dataclass_fields__}


COUNTERS = Counters()
_listening = False


def listen() -> None:
    """Count JAX's compilations and cache hits in :data:`COUNTERS` (once per process), through
    ``jax.monitoring``'s public listeners."""
    global _listening
    if _listening:
        return
    import jax.monitoring as monitoring

    def event(name: str, **_) -> None:
        if name == "/jax/compilation_cache/compile_requests_use_cache":
            COUNTERS.cache_requests += 1
        elif name == "/jax/compilation_cache/cache_hits":
            COUNTERS.cache_hits += 1

    def duration(name: str, seconds: float, **_) -> None:
        if name == "/jax/core/compile/backend_compile_duration":
            COUNTERS.xla_compiles += 1
            COUNTERS.xla_compile_s += seconds

    monitoring.register_event_listener(event)
    monitoring.register_event_duration_secs_listener(duration)
    _listening = True


def program(family):
    """``family``'s compiled program in this process, built on first use (and counted)."""
    with _LOCK:
        if family.key in _PROGRAMS:
            _PROGRAMS.move_to_end(family.key)
            return _PROGRAMS[family.key]
    listen()
    start = time.perf_counter()
    built = family.compile()
    with _LOCK:
        COUNTERS.programs += 1
        COUNTERS.program_s += time.perf_counter() - start
        _PROGRAMS[family.key] = built
        while len(_PROGRAMS) > KEEP:
            _PROGRAMS.popitem(last=False)
    return built


def prime(family, variant) -> None:
    """A task for an idle worker while a sweep's first stage runs elsewhere (the parent fit
    that the others start from): build the family's program and run it once
    (``family.prime``), so that its first real task finds it compiled. Nothing is kept but
    the program; a worker that has the program already does nothing."""
    with _LOCK:
        if family.key in _PROGRAMS:
            return
    family.prime(program(family), variant)


def _devices() -> int:
    import jax

    return jax.local_device_count()


def _mark_started(name: str) -> None:
    where = os.environ.get(STARTED_ENV)
    if where:
        n = len(list(Path(where).glob(f"started-{os.getpid()}-*")))
        (Path(where) / f"started-{os.getpid()}-{n}").write_text(name)


@dataclass
class Outcome:
    """One variant's result as a task returns it to the client: ``record`` (JSON-able: the
    row, ranks or summary), ``arrays`` (the slimmed posterior, NumPy arrays), or ``error``."""

    name: str
    record: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)
    payload: object = None     # what the family's ``write`` puts in the variant's directory
    error: str = ""
    pid: int = 0
    wall_s: float = 0.0
    compile: dict = field(default_factory=dict)     # Counters.since(before the variant)
    compile_total: dict = field(default_factory=dict)   # the process's, after the variant
    devices: int = 0           # the XLA devices of the process that fitted it (its layout)
    started: float = 0.0       # when its fit began and ended (seconds since the epoch)
    finished: float = 0.0


def run_batch(family, variants: list, context=None) -> list[Outcome]:
    """A task: fit each of ``variants`` (the family's own variant objects) on the family's
    program (none when its ``key`` is None: each variant compiles its own), in order;
    ``context``: what every variant of the task shares (a parent's adapted state). The
    family's ``fit`` returns the record, the arrays and (optionally) a payload for its
    ``write``. A variant whose fit fails for a reason the family expects (``family.errors``)
    is returned with its error; anything else fails the task."""
    out = []
    for variant in variants:
        before = Counters(**vars(COUNTERS))
        started, start = time.time(), time.perf_counter()
        _mark_started(variant.name)
        listen()
        compiled = program(family) if family.key is not None else None
        try:
            record, arrays, *payload = family.fit(compiled, variant, context)
            outcome = Outcome(name=variant.name, record=record, arrays=arrays,
                              payload=payload[0] if payload else None)
        except family.errors as exc:
            outcome = Outcome(name=variant.name, error=str(exc))
        outcome.pid, outcome.wall_s = os.getpid(), time.perf_counter() - start
        outcome.compile = COUNTERS.since(before)
        outcome.compile_total = dict(vars(COUNTERS))
        outcome.devices = _devices()
        outcome.started, outcome.finished = started, time.time()
        out.append(outcome)
    return out
