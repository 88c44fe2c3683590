"""What the commands share: the exit codes and the one-line ``error:`` exit, the import of the
modelling stack, the Config built from a command's options, the record of the command line,
and the place (this process or a Dask cluster) where a sweep's fits run."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Optional

import typer

EXIT_BAD_INPUT = 2
EXIT_DIAGNOSTICS = 3

# the console script's arguments (set by app.main); None under typer's test runner or app()
argv: list[str] | None = None

# the options that set a config key, in the order they are applied
OPTION_KEYS = {
    "dataset": "data.dataset", "reference": "data.reference", "benchmarks": "data.benchmarks",
    "since": "data.since", "until": "data.until", "params": "data.params",
    "trend": "model.trend", "likelihood": "model.likelihood", "d0": "model.d0",
    "curves": "model.curves",
    "chains": "sampler.chains", "draws": "sampler.draws", "tune": "sampler.tune",
    "seed": "sampler.seed", "sampler": "sampler.sampler", "device": "sampler.device",
}


def fail(message, code: int | None = None) -> None:
    """One ``error:`` line and the exit code: ``message`` is text or an exception whose
    ``exit_code`` (rundir's errors, an incomplete sweep) chooses the code; otherwise bad
    input (2)."""
    code = code if code is not None else getattr(message, "exit_code", EXIT_BAD_INPUT)
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def fail_io(exc: OSError, where) -> None:
    """Exit on an I/O error (a full disk, no permission) at ``where``, with rundir's code."""
    from bayes_densing.results.rundir import io_error

    fail(io_error(exc, where))


def fit_errors() -> tuple[type[Exception], ...]:
    """The faults of a fitting command that end it with their ``error:`` line: bad input or
    configuration, a model that cannot be built, a damaged or taken run directory, a sampler
    that cannot run."""
    from bayes_densing.config import ConfigError
    from bayes_densing.data import DataError
    from bayes_densing.inference.sample import SamplerError
    from bayes_densing.model import ModelError
    from bayes_densing.results import RunDirError

    return ConfigError, DataError, ModelError, RunDirError, SamplerError


def import_stack() -> None:
    """Import the modelling stack (PyMC, PyTensor, ArviZ, JAX) with the cyclic garbage collector
    paused, then freeze what it made out of the collector's reach: objects that live as long as
    the process, which every full collection would walk again (benchmarks/README.md, "The
    default fit on the bundled dataset"). For the commands that fit."""
    import gc

    gc.disable()
    try:
        import jax  # noqa: F401

        from bayes_densing import run  # noqa: F401  (PyMC, PyTensor, ArviZ, pandas)
    finally:
        gc.freeze()
        gc.enable()


def option_overrides(ctx: typer.Context, skip: tuple[str, ...] = ()) -> dict:
    """The config keys a command's options set (``OPTION_KEYS``), ``None`` where not given;
    ``skip`` names options of the same name that mean something else in that command."""
    return {key: ctx.params[name] for name, key in OPTION_KEYS.items()
            if name in ctx.params and name not in skip}


def build_config(model: str, overrides: dict, set_: list[str]):
    """The preset (or TOML file) ``model`` with command-line overrides and ``--set KEY=VALUE``."""
    from bayes_densing.config import load_config

    cfg = load_config(model)
    for key, value in overrides.items():
        if value is not None:
            cfg.set(key, value)
    cfg.set_items(set_)
    chosen = overrides.get("model.curves") or any(s.strip().startswith("model.curves")
                                                  for s in set_)
    if cfg.fall_back_to_joint(bool(chosen)):
        typer.echo(f"note: {cfg.sampler.sampler} (mass_matrix {cfg.sampler.mass_matrix}) fits "
                   "the joint model (--curves joint): the cut runs on the default sampler only",
                   err=True)
    return cfg.validate()


def dated_out(out: Optional[Path], command: str) -> Path:
    """``--out``, or by default runs/COMMAND-YYYYMMDD-HHMMSS."""
    return out or Path("runs") / datetime.now().strftime(f"{command}-%Y%m%d-%H%M%S")


def command_line(ctx: typer.Context) -> str:
    """The command that ran, for the run's record: as typed when started from the console
    script, else (typer's test runner, ``app()`` from Python) rebuilt from the options given."""
    import shlex

    if argv is not None:
        return " ".join(["bayes-densing", *map(shlex.quote, argv)])
    words = ["bayes-densing", ctx.info_name or ""]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if value == param.default or value is None or value == []:
            continue
        flag = param.opts[0]
        if isinstance(value, bool):
            words.append(flag if value else (param.secondary_opts or [flag])[0])
        else:
            for v in (value if isinstance(value, (list, tuple)) else [value]):
                words += [flag, str(v)]
    return " ".join(map(shlex.quote, words))


@contextmanager
def sweep_place(workers: Optional[int], scheduler: Optional[str], quiet: bool = False):
    """Where a sweep's fits run (``distributed.runner.executor``)."""
    from bayes_densing.distributed import runner

    with runner.executor(scheduler, workers,
                         say=(lambda _: None) if quiet else typer.echo) as place:
        yield place
