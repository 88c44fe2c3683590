"""Run a family's variants in this process or on a Dask cluster, and write each as it arrives.

:func:`executor` gives the place the fits run: this process (no options), a ``LocalCluster``
of ``workers`` processes that the command starts and stops, or a running scheduler at
``scheduler`` (``tcp://host:8786``; a SLURM or Kubernetes cluster started by dask-jobqueue or
dask-kubernetes, docs/sweeps.md). :func:`run` sends the variants still missing from the sweep
directory as tasks (``programs.run_batch``), and the client, the only writer, publishes each
finished variant into the directory (``store.SweepStore``) as its task returns.
"""

from __future__ import annotations

import logging
import math
import os
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

from bayes_densing.config import CPU_DEVICES_ENV
from bayes_densing.distributed.programs import Outcome, prime, run_batch
from bayes_densing.distributed.store import SweepStore

# batches per worker: enough that the workers finish within about a fit of each other
# (benchmarks/README.md, "Sweeps on Dask")
TASKS_PER_WORKER = 16


class SweepIncomplete(RuntimeError):
    """Some tasks failed (a worker lost too often, an unexpected error); the variants that
    finished are kept in the sweep directory and a re-run computes the others (exit 1)."""

    exit_code = 1


class InProcess:
    """The fits in this process, one variant at a time, each written as it finishes."""

    where = "in-process"

    def batches(self, n: int) -> int:
        return 1

    def map(self, streams) -> Iterator[tuple[object, list[Outcome] | BaseException]]:
        for family, batches, context in streams:
            for batch in batches:
                yield family, run_batch(family, batch, context)


class OnDask:
    """The fits on a Dask cluster through ``client``: the family and the shared context sent
    to every worker once, a task per batch, results in the order they finish."""

    def __init__(self, client, where: str):
        self.client, self.where = client, where

    @property
    def workers(self) -> int:
        return max(1, len(self.client.scheduler_info(n_workers=-1)["workers"]))

    def batches(self, n: int) -> int:
        return max(1, n // (TASKS_PER_WORKER * self.workers))

    def map(self, streams) -> Iterator[tuple[object, list[Outcome] | BaseException]]:
        """Every stream's (family, batches, context) submitted at once; (family, outcomes or
        the task's exception) as the tasks finish."""
        from distributed import as_completed

        futures, family_of, primers = [], {}, []
        idle = sum(len(b) for _, b, _ in streams) < self.workers
        for family, batches, context in streams:
            shared = self.client.scatter([family, context], broadcast=True, hash=False)
            for batch in batches:
                future = self.client.submit(run_batch, shared[0], batch, shared[1], pure=False,
                                            key=f"fit-{batch[0].name[:60]}-{uuid.uuid4().hex[:8]}")
                futures.append(future)
                family_of[future.key] = family
            if idle and family.key is not None and hasattr(family, "prime"):
                # fewer tasks than workers (a parent fit): the others compile meanwhile; after
                # the fits, and below them, so that a worker runs a fit first if it has both
                primers += [self.client.submit(prime, shared[0], batches[0][0], pure=False,
                                               workers=[address], allow_other_workers=False,
                                               priority=-1, key=f"prime-{uuid.uuid4().hex[:8]}")
                            for address in self.client.scheduler_info(n_workers=-1)["workers"]]
        try:
            for future in as_completed(futures):
                family = family_of[future.key]
                if future.status == "error":
                    yield family, future.exception()
                else:
                    yield family, future.result()
                future.release()
        finally:
            for future in futures + primers:
                future.cancel()


def devices_per_worker(workers: int, cores: int | None = None) -> int:
    """XLA host devices per worker of a local cluster: the cores shared out, at least one
    (workers × devices ≤ cores); a config's ``sampler.cpu_devices`` still wins."""
    return max(1, (cores or os.cpu_count() or 1) // max(1, workers))


@contextmanager
def executor(scheduler: str | None = None, workers: int | None = None,
             say: Callable[[str], None] = print, connect_timeout: str = "30s"):
    """Where a sweep's fits run (see the module's docstring); a local cluster is closed on
    the way out, whatever happens (an interrupt kills its processes, ``interrupts.stop``)."""
    from bayes_densing.config import ConfigError

    if scheduler and workers:
        raise ConfigError("--scheduler and --workers: give one (--workers starts a local "
                         "cluster, --scheduler uses a running one)")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if not scheduler and not workers:
        yield InProcess()
        return
    from distributed import Client, LocalCluster

    if scheduler:
        say(f"connecting to the Dask scheduler at {scheduler} …")
        try:
            client = Client(scheduler, timeout=connect_timeout)
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
        with client:
            n = len(client.scheduler_info(n_workers=-1)["workers"])
            say(f"{n} worker(s) at {scheduler}")
            yield OnDask(client, scheduler)
        return
    devices = devices_per_worker(workers)
    say(f"starting a local Dask cluster of {workers} worker process(es), {devices} XLA host "
        f"device(s) each …")
    # one thread per worker: a worker runs one fit at a time, on its own XLA host devices
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.ERROR,
                      env={CPU_DEVICES_ENV: str(devices)}) as cluster, \
            Client(cluster) as client:
        yield OnDask(client, f"local cluster ({workers} workers)")


@dataclass
class Progress:
    """Done / total, failures and the time left over the whole sweep, a line per variant."""

    total: int
    say: Callable[[str], None]
    done: int = 0
    failed: int = 0
    start: float = field(default_factory=time.perf_counter)

    @classmethod
    def of(cls, store: SweepStore, variants: list,
           say: Callable[[str], None] | None) -> "Progress":
        """The progress of fitting those of ``variants`` that ``store`` does not hold yet."""
        return cls(total=len(missing(store, variants)), say=say or (lambda _: None))

    def line(self, text: str) -> None:
        self.done += 1
        spent = time.perf_counter() - self.start
        left = spent / self.done * (self.total - self.done)
        tail = f", {self.failed} failed" if self.failed else ""
        self.say(f"[{self.done}/{self.total}{tail}; ~{_duration(left)} left] {text}")


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def missing(store: SweepStore, variants: list, done: dict | None = None) -> list:
    """The ``variants`` that ``store`` does not hold yet (``done``: its finished variants,
    when already read)."""
    done = store.done() if done is None else done
    return [v for v in variants if v.name not in done]


@dataclass
class Job:
    """Variants of one family, and what its tasks share (``context``)."""

    family: object
    variants: list
    context: object = None


def run(family, variants: list, store: SweepStore, place, *, context=None,
        **options) -> dict[str, dict]:
    """:func:`run_jobs` of one family's ``variants``."""
    return run_jobs([Job(family, variants, context)], store, place, **options)


def run_jobs(jobs: list[Job], store: SweepStore, place, *,
             describe: Callable[[Outcome], str] = lambda o: f"{o.name}: {o.error or 'done'}",
             progress: Progress | None = None, batch: int | None = None) -> dict[str, dict]:
    """Fit every variant of ``jobs`` that ``store`` does not hold yet, on ``place``
    (:func:`executor`), all jobs' tasks at once, writing each variant into ``store`` as it
    arrives (its family's ``write`` puts its payload in the variant's directory); ``describe``
    makes a finished variant's line for ``progress`` (one :class:`Progress` may count several
    calls: a sweep's stages). Returns every finished variant's result.json, these and earlier
    ones. Raises :class:`SweepIncomplete` when tasks failed, after writing all that
    finished."""
    done = store.done()
    work = [(job, todo) for job in jobs if (todo := missing(store, job.variants, done))]
    if not work:
        return done
    store.unpublish()
    progress = progress or Progress(total=sum(len(t) for _, t in work), say=lambda _: None)
    streams = []
    for job, todo in work:
        size = batch or place.batches(len(todo))
        streams.append((job.family, [todo[i:i + size] for i in range(0, len(todo), size)],
                        job.context))
    errors: list[str] = []
    for family, outcome in place.map(streams):
        if isinstance(outcome, BaseException):
            errors.append(f"{type(outcome).__name__}: {outcome}")
            progress.failed += 1
            continue
        for one in outcome:
            store.write(one, {"where": place.where}, writer=getattr(family, "write", None))
            progress.line(describe(one))
    if errors:
        raise SweepIncomplete(
            f"{len(errors)} task(s) failed (first: {errors[0][:300]}); the {progress.done} "
            f"variant(s) that finished are kept in {store.out}: run the same command again to "
            "compute only the missing ones")
    return store.done()


def compile_line(out) -> str:
    """What a sweep's processes compiled, from its variants: programs built per process, XLA
    compilations and their seconds, the persistent cache's hits (``programs.Counters``)."""
    last: dict[int, dict] = {}
    for doc in sorted(SweepStore.results(out), key=lambda d: d.get("finished", 0)):
        last[doc["pid"]] = doc.get("compile_total") or {}
    if not last:
        return ""
    total = {k: sum(c.get(k, 0) for c in last.values())
             for k in ("programs", "xla_compiles", "xla_compile_s", "cache_requests",
                       "cache_hits")}
    return (f"Compiled: {total['programs']} program(s) in {len(last)} process(es), "
            f"{total['xla_compiles']} XLA compilations ({total['xla_compile_s']:.0f} s), "
            f"{total['cache_hits']} of {total['cache_requests']} from the persistent cache")
