"""The sweep directory: one subdirectory per finished variant, written by the client alone.

::

    OUT/sweep.json                 what the sweep is: kind, config hash, input SHA-256, version
    OUT/variants/NAME/result.json  one finished variant: its record, seed, worker, timings
    OUT/variants/NAME/*.npz        its arrays (a slimmed posterior, an adapted state)
    OUT/…                          the index (subsets.csv, sbc.json, …) and manifest.json,
                                   derived from variants/ when the sweep is complete

Each variant directory appears by one rename of a complete temporary one (``rundir``), so a
killed or interrupted sweep leaves whole variants and nothing else. Re-running the command on
the same ``--out`` fits only the variants that are missing; a sweep whose config, input or
package version differs from the recorded one is refused (:class:`SweepMismatch`), never
mixed in.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from bayes_densing import __version__
from bayes_densing.results import rundir

SWEEP, VARIANTS, RESULT = "sweep.json", "variants", "result.json"


class SweepMismatch(rundir.RunDirError):
    """``--out`` holds a sweep of another config, input or version (exit 2)."""


def digest(spec) -> str:
    """SHA-256 of ``spec`` as canonical JSON (sorted keys): the config hash."""
    text = json.dumps(spec, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# where and how the chains run: the same draws' distribution on any of them (docs/sweeps.md)
LAYOUT_KEYS = ("device", "cpu_devices", "chain_method")


def config_spec(config) -> dict:
    """``config.to_dict()`` without the device layout (:data:`LAYOUT_KEYS`): a sweep begun in
    this process may be resumed on a cluster."""
    spec = config.to_dict()
    spec["sampler"] = {k: v for k, v in spec["sampler"].items() if k not in LAYOUT_KEYS}
    return spec


def identity(kind: str, spec: dict, input_sha256: str) -> dict:
    """What a resumed sweep must match: its kind, the hash of ``spec`` (the config and the
    sweep's own settings, without the device layout), the input's SHA-256, the version."""
    return {"kind": kind, "config_sha256": digest(spec), "input_sha256": input_sha256,
            "bayes_densing": __version__}


def flat(spec: dict, prefix: str = "") -> dict:
    """A nested dict (a config's) as dotted keys: {"priors.slope_sd": 0.3, …}."""
    out = {}
    for k, v in spec.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _short(value) -> str:
    text = json.dumps(value, default=str) if value is not None else "(none)"
    return text if len(text) <= 60 else text[:57] + "…"


def dir_name(name: str) -> str:
    """A variant's directory: its name where that is a safe file name, else a safe version
    of it with a short hash of the name (two names never share one)."""
    safe = re.sub(r"[^A-Za-z0-9._=+,-]+", "_", name).strip("._")[:100]
    if safe == name and safe:
        return safe
    return f"{safe or 'variant'}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


class SweepStore:
    """The sweep directory ``out`` for a sweep of ``ident`` (:func:`identity`), opened to
    resume: a directory with another identity is refused unless ``force`` (then replaced);
    an existing directory that is not a sweep is refused."""

    def __init__(self, out: str | Path, ident: dict, force: bool = False, spec: dict | None = None):
        self.out = Path(out)
        for note in rundir.clean_stale(self.out):
            print(f"note: {note}", file=sys.stderr)
        self.ident = ident
        recorded = self._recorded()
        if self.out.exists() and force:
            shutil.rmtree(self.out)
        elif recorded is not None and recorded.get("identity") != ident:
            raise SweepMismatch(self._mismatch(recorded.get("identity") or {},
                                               recorded.get("spec") or {}, spec or {}))
        elif self.out.exists() and recorded is None and any(self.out.iterdir()):
            raise rundir.RunDirError(
                f"{self.out} exists and is not a resumable sweep (no {SWEEP}); choose another "
                "--out or pass --force to replace it")
        self.variants = self.out / VARIANTS
        try:
            self.variants.mkdir(parents=True, exist_ok=True)
            if recorded is None or force:
                rundir.write_atomic(self.out / SWEEP, json.dumps(
                    {"identity": ident, "spec": spec or {}}, indent=2, default=str))
        except OSError as exc:
            raise rundir.io_error(exc, self.out) from None

    def _recorded(self) -> dict | None:
        path = self.out / SWEEP
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            raise rundir.RunDirError(f"{path} is unreadable; pass --force to start the sweep "
                                     "afresh") from None

    def _mismatch(self, old: dict, old_spec: dict, new_spec: dict) -> str:
        what = {"kind": "the command", "config_sha256": "the configuration",
                "input_sha256": "the input data", "bayes_densing": "the bayes-densing version"}
        differ = [f"{label} ({old.get(k)!s:.16} then, {self.ident.get(k)!s:.16} now)"
                  for k, label in what.items() if old.get(k) != self.ident.get(k)]
        was, now = flat(old_spec), flat(new_spec)
        keys = [k for k in sorted(set(was) | set(now)) if was.get(k) != now.get(k)]
        if keys and old.get("config_sha256") != self.ident.get("config_sha256"):
            differ.append("; ".join(f"{k}: {_short(was.get(k))} then, {_short(now.get(k))} now"
                                    for k in keys[:5]) + (" …" if len(keys) > 5 else ""))
        return (f"{self.out} holds a sweep of other settings: {'; '.join(differ)}. Resuming "
                "would mix two sweeps: use another --out, or --force to discard it")

    @staticmethod
    def results(out: str | Path) -> list[dict]:
        """Every finished variant's result.json under ``out``, without opening the sweep."""
        docs = []
        for path in sorted((Path(out) / VARIANTS).glob(f"*/{RESULT}")):
            try:
                docs.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        return docs

    def unpublish(self) -> None:
        """Variants are about to be added: the index's manifest (a complete sweep's last
        file) goes until the index is written again."""
        (self.out / rundir.MANIFEST).unlink(missing_ok=True)

    def done(self) -> dict[str, dict]:
        """The finished variants, name → their result.json (a directory without a readable
        one is not finished: directories appear whole or not at all)."""
        return {doc["name"]: doc for doc in self.results(self.out)}

    def write(self, outcome, extra: dict | None = None, writer=None) -> Path:
        """Publish one finished variant (a ``programs.Outcome``): result.json, one
        ``GROUP.npz`` per group of its arrays and (``writer(directory, payload)``, when the
        variant has a payload) its family's own files, by one rename."""
        doc = {"name": outcome.name, "record": outcome.record, "error": outcome.error,
               "pid": outcome.pid, "wall_s": outcome.wall_s, "compile": outcome.compile,
               "compile_total": outcome.compile_total,
               "devices": outcome.devices, "started": outcome.started,
               "finished": outcome.finished,
               "groups": sorted(outcome.arrays), **(extra or {})}
        where = self.variants / dir_name(outcome.name)
        with rundir.atomic_dir(where, force=where.exists()) as tmp:
            if writer is not None and outcome.payload is not None:
                with _local_io():
                    writer(tmp, outcome.payload)
            for group, arrays in outcome.arrays.items():
                buffer = io.BytesIO()
                np.savez(buffer, **arrays)
                rundir.write_bytes(tmp / f"{group}.npz", buffer.getvalue())
            rundir.write_bytes(tmp / RESULT, json.dumps(doc, indent=2, default=str).encode())
        return where

    def arrays(self, name: str, group: str) -> dict[str, np.ndarray]:
        """One group of a finished variant's arrays."""
        with np.load(self.variants / dir_name(name) / f"{group}.npz") as f:
            return {k: f[k] for k in f.files}

    def path(self, name: str) -> Path:
        return self.variants / dir_name(name)


@contextmanager
def _local_io():
    """The client's own file writes: xarray takes a Dask cluster-wide lock for netCDF writes
    while a distributed client is the default scheduler, and fails on one to a buffer
    ("Semaphore or Lock ... not known"); these files are local, so the local scheduler's."""
    try:
        import dask
    except ImportError:
        yield
        return
    with dask.config.set(scheduler="synchronous"):
        yield


@contextmanager
def sweep_dir(out: str | Path | None):
    """``out``, or (None: the caller keeps only the table) a temporary directory."""
    if out is not None:
        yield Path(out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp) / "sweep"
