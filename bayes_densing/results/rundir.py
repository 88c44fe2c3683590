"""The run-directory contract: how a command's output directory is written, published and read.

* **Written aside, published by one rename.** Everything goes into a hidden temporary sibling
  ``.NAME.partial-OWNER-*`` that becomes ``NAME`` by a single ``rename``. Without ``--force``
  the rename never replaces anything: a rename onto a non-empty directory fails on Linux and
  NFS, and that failure means another run finished first. The losing run is then kept whole
  under a visible ``NAME.conflict-<UTC>-<host>-<pid>`` (:class:`OutputConflict`, exit 4).
* **Owners qualified by host, boot and PID** (``OWNER`` = ``PID@HOST+BOOT``), so that on a
  shared filesystem another host's live run is never taken for a killed one and deleted.
* **Manifests.** ``manifest.json`` records the format, its version, the package version, the
  command, and size and SHA-256 of every core file; every command that reads a run verifies it
  first (:func:`verify`) and refuses a damaged, incomplete or unknown-format run, naming the
  file. Outputs drawn later (figures, report, influence) are listed in ``derived.json``,
  rewritten atomically; a missing or damaged derived file is redrawn, never fatal.
* **I/O errors** (disk full, read-only filesystem) while writing end in :class:`OutputIOError`
  (exit 5) with nothing partial left.

Only the standard library is imported here, so that a command can refuse a damaged run before
it loads the modelling stack.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from bayes_densing import __version__
from bayes_densing import interrupts

FORMAT = "bayes-densing"
FORMAT_VERSION = 1
MANIFEST, DERIVED = "manifest.json", "derived.json"
RUN_CORE = ("posterior.nc", "models.csv", "trend.csv", "diagnostics.json", "config.toml",
            "summary.txt")
# the environment variable of the test hook that holds a process just before its rename
BARRIER_ENV = "BAYES_DENSING_TEST_BARRIER"


class RunDirError(RuntimeError):
    """The run directory cannot be written or read; the message says why (exit 2)."""

    exit_code = 2


class OutputConflict(RunDirError):
    """Another process published the same output first; this one's is kept at ``kept``."""

    exit_code = 4

    def __init__(self, message: str, kept: Path):
        super().__init__(message)
        self.kept = kept


class OutputIOError(RunDirError):
    """The output could not be written (disk full, read-only, ...); nothing was left."""

    exit_code = 5


# --- who owns a temporary directory ------------------------------------------------------------

def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")[:8]
    except OSError:
        return "0"


HOST = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "host"
BOOT = _boot_id()
_OWNER = re.compile(r"-(\d+)@([A-Za-z0-9._-]+)\+([0-9a-f]+)(?:-|$)")


def owner() -> str:
    """This process as it appears in temporary names: ``PID@HOST+BOOT``."""
    return f"{os.getpid()}@{HOST}+{BOOT}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _dead_owner(name: str) -> int | None:
    """The PID of a temporary name's owner if that process is certainly gone, else None (a
    live process, or one on another host whose liveness cannot be checked from here)."""
    m = _OWNER.search(name)
    if m is None:
        return None
    pid, host, boot = int(m.group(1)), m.group(2), m.group(3)
    if host != HOST:
        return None
    return pid if boot != BOOT or not _alive(pid) else None


def clean_stale(out: Path) -> list[str]:
    """Remove what a killed process left beside ``out``; put back a previous run that a killed
    ``--force`` had moved aside. Returns what was done, for a notice."""
    done: list[str] = []
    parent = Path(out).resolve().parent
    if not parent.is_dir():
        return done
    name = Path(out).name
    for path in sorted(parent.glob(f".{name}.partial-*")):
        pid = _dead_owner(path.name)
        if pid is not None:
            shutil.rmtree(path, ignore_errors=True)
            done.append(f"removed {path.name}, left by killed process {pid}")
    for path in sorted(parent.glob(f".{name}.old-*")):
        pid = _dead_owner(path.name)
        if pid is None:
            continue
        if Path(out).exists():
            shutil.rmtree(path, ignore_errors=True)
            done.append(f"removed {path.name}, left by killed process {pid}")
        else:
            path.rename(out)
            done.append(f"restored {name} from {path.name}: process {pid} was killed while "
                        "replacing it")
    return done


# --- writing -----------------------------------------------------------------------------------

_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def io_error(exc: BaseException, path: Path | str) -> OutputIOError:
    """One line for an error while writing under ``path``."""
    code = getattr(exc, "errno", None)
    if code in _NO_SPACE or "No space left" in str(exc):
        why = "no space left on the device"
    else:
        why = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
    return OutputIOError(f"{path}: cannot write ({why}); nothing was written")


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and flush it to the disk (so that a full disk shows now)."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_atomic(path: Path, data: bytes | str) -> None:
    """Replace ``path`` by a complete new file (temporary sibling, then rename)."""
    path = Path(path)
    data = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write_bytes(Path(tmp), data)
        os.chmod(tmp, 0o644)            # mkstemp's 0600 would differ from the run's other files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_out_dir(out: str | Path, force: bool, unique: bool = False) -> Path:
    """Refuse to overwrite an existing output unless ``force`` (``unique``: pick ``NAME-2``,
    ``NAME-3``, … instead, for default names); create its parent. First clears what a killed
    earlier process left beside it. Returns the directory to write."""
    out = Path(out)
    for note in clean_stale(out):
        print(f"note: {note}", file=sys.stderr)
    if unique and not force:
        out = _free_name(out)
    if out.exists() and not force:
        raise RunDirError(f"{out} already exists; choose another --out or pass --force to replace it")
    if out.exists() and not out.is_dir():
        raise RunDirError(f"{out} exists and is not a directory")
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot create {parent} for --out ({exc.strerror})") from None
    return out


def _free_name(out: Path) -> Path:
    candidate, k = out, 1
    while candidate.exists() or candidate.is_symlink():
        k += 1
        candidate = out.with_name(f"{out.name}-{k}")
    return candidate


def _barrier() -> None:
    """Test hook: with ``BAYES_DENSING_TEST_BARRIER=DIR:N`` set, mark arrival in DIR and wait
    until N processes have arrived (at most ten minutes), so that a test can make a race or a
    kill at this point certain."""
    spec = os.environ.get(BARRIER_ENV)
    if not spec:
        return
    where, n = spec.rsplit(":", 1)
    (Path(where) / f"arrived-{os.getpid()}").touch()
    end = time.monotonic() + 600
    while len(list(Path(where).glob("arrived-*"))) < int(n) and time.monotonic() < end:
        time.sleep(0.05)


def _publish(tmp: Path, out: Path, force: bool, unique: bool) -> Path:
    """Rename the finished ``tmp`` to ``out``; returns where it went."""
    _barrier()
    with interrupts.LOCK:
        if force and out.exists():
            old = out.with_name(f".{out.name}.old-{owner()}")
            try:
                out.rename(old)
            except FileNotFoundError:    # another --force writer moved it meanwhile
                old = None
            if old is not None:
                try:
                    tmp.rename(out)
                except BaseException:
                    old.rename(out)  # put the previous run back
                    raise
                shutil.rmtree(old, ignore_errors=True)
                return out
        while True:
            try:
                tmp.rename(out)      # onto a non-empty directory this fails: it replaces nothing
                return out
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                    raise
            if unique:               # a default name: take the next free one
                out = _free_name(out)
                continue
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            kept = out.with_name(f"{out.name}.conflict-{stamp}-{HOST}-{os.getpid()}")
            tmp.rename(kept)
            raise OutputConflict(
                f"{out} was written by another run that finished first; this run is kept "
                f"whole at {kept}", kept)


@contextmanager
def atomic_dir(out: str | Path, force: bool = False, *, unique: bool = False, where: list | None = None):
    """Yield a temporary directory beside ``out``; rename it to ``out`` only on success.

    The temporary directory is registered with ``interrupts`` (a signal deletes it) and the
    renames hold its lock, so an interrupt sees either the whole new run or none of it. An
    ``OSError`` while writing (disk full) becomes :class:`OutputIOError`, with the temporary
    directory removed. ``where``: a list that receives the published path (``unique`` may
    have moved it to ``NAME-2``)."""
    out = check_out_dir(out, force, unique)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-{owner()}-",
                                    dir=out.resolve().parent))
    except OSError as exc:
        raise io_error(exc, out) from None
    try:
        with interrupts.registered(tmp):
            try:
                yield tmp
                done = _publish(tmp, out, force, unique)
            except OSError as exc:
                raise io_error(exc, out) from None
            if where is not None:
                where.append(done)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# --- manifests ---------------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _entry(path: Path) -> dict:
    return {"size": path.stat().st_size, "sha256": _sha256(path)}


def write_manifest(directory: Path, kind: str, files, command: str = "") -> None:
    """``manifest.json``: the format, package version, command, and size and SHA-256 of
    ``files`` (names relative to ``directory``), which every reader verifies."""
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
           "bayes_densing": __version__, "command": command,
           "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "files": {name: _entry(Path(directory) / name) for name in files}}
    write_bytes(Path(directory) / MANIFEST, json.dumps(doc, indent=2).encode())


def record_derived(directory: Path, files) -> None:
    """Add (or refresh) ``files`` in ``derived.json``, rewritten atomically; entries whose
    file is gone are dropped."""
    directory = Path(directory)
    entries = _read_json(directory / DERIVED) or {}
    entries = {k: v for k, v in entries.get("files", {}).items() if (directory / k).is_file()}
    for name in files:
        entries[str(name)] = _entry(directory / name)
    write_atomic(directory / DERIVED, json.dumps({"files": entries}, indent=2))


def derived_files(directory: str | Path) -> list[str]:
    """The files ``derived.json`` lists (none if it is missing or unreadable)."""
    doc = _read_json(Path(directory) / DERIVED)
    return sorted(doc.get("files", {})) if isinstance(doc, dict) else []


def kind(directory: str | Path) -> str | None:
    """The ``kind`` its manifest gives a directory (run, subsets, sensitivity), if readable."""
    doc = _read_json(Path(directory) / MANIFEST)
    return doc.get("kind") if isinstance(doc, dict) else None


def derived_ok(directory: Path, names) -> bool:
    """Whether every one of ``names`` is present and as ``derived.json`` recorded it."""
    directory = Path(directory)
    files = (_read_json(directory / DERIVED) or {}).get("files", {})
    for name in names:
        path, want = directory / name, files.get(str(name))
        if want is None or not path.is_file() or path.stat().st_size != want.get("size") \
                or _sha256(path) != want.get("sha256"):
            return False
    return True


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _rerun(doc: dict | None) -> str:
    command = (doc or {}).get("command") or ""
    if not command.startswith("bayes-densing "):
        return "re-run the fit that wrote it"
    return f"re-run `{command}`" + ("" if "--force" in command.split() else " with --force")


def verify(directory: str | Path, kind: str = "run") -> dict:
    """Check a directory against its manifest before anything reads it; returns the manifest.

    Raises :class:`RunDirError` naming the file for a missing directory, a missing or damaged
    manifest, an unknown format, or a core file that is missing, truncated or altered."""
    return _verified(directory, kind, keep=False)[0]


def read_verified(directory: str | Path, kind: str = "run") -> dict[str, bytes]:
    """:func:`verify`, returning every file the manifest lists as the bytes that were checked:
    what the caller parses is what was verified, even if the directory changes meanwhile."""
    return _verified(directory, kind, keep=True)[1]


def _verified(directory: str | Path, kind: str, keep: bool) -> tuple[dict, dict[str, bytes]]:
    directory = Path(directory)
    for note in clean_stale(directory):        # a killed writer's leftovers, or a run to restore
        print(f"note: {note}", file=sys.stderr)
    if not directory.is_dir():
        raise RunDirError(f"{directory}: no such run directory (write one with bayes-densing "
                          "sample --out)")
    path = directory / MANIFEST
    if not path.exists():
        present = [n for n in RUN_CORE if (directory / n).exists()]
        if kind == "run" and len(present) == len(RUN_CORE):
            raise RunDirError(f"{directory}: no {MANIFEST}: written by bayes-densing 0.1 or "
                              "edited by hand; re-run the `bayes-densing sample` that wrote it")
        missing = [n for n in RUN_CORE if n not in present] if kind == "run" else [MANIFEST]
        raise RunDirError(f"{directory}: not a complete {kind} directory (missing "
                          f"{', '.join(missing)})")
    doc = _read_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), dict):
        raise RunDirError(f"{path}: damaged (not the manifest bayes-densing writes); "
                          "re-run the command that wrote the directory")
    if doc.get("format") != FORMAT or doc.get("format_version") != FORMAT_VERSION:
        raise RunDirError(
            f"{directory}: run format {doc.get('format')!r} version {doc.get('format_version')}"
            f" (written by bayes-densing {doc.get('bayes_densing', '?')}); this bayes-densing "
            f"({__version__}) reads version {FORMAT_VERSION} only: {_rerun(doc)}")
    if doc.get("kind") != kind:
        raise RunDirError(f"{directory}: a {doc.get('kind')} directory, not a {kind} directory")
    read = {}
    for name, want in doc["files"].items():
        file = directory / name
        try:
            data = file.read_bytes()
        except OSError:
            raise RunDirError(f"{file}: missing from the run; {_rerun(doc)}") from None
        if len(data) != want.get("size"):
            raise RunDirError(f"{file}: damaged ({len(data)} bytes, the manifest says "
                              f"{want.get('size')}: truncated or replaced); {_rerun(doc)}")
        if hashlib.sha256(data).hexdigest() != want.get("sha256"):
            raise RunDirError(f"{file}: damaged (its SHA-256 differs from {MANIFEST}); "
                              f"{_rerun(doc)}")
        if keep:
            read[name] = data
    return doc, read
