"""A run's results: its posterior as one ArviZ ``DataTree`` (``posterior``, ``log_likelihood``,
``log_prior``, ``posterior_predictive``), the tables and summary made from it, and the run
directory it is written to (``rundir``). ``results.X`` is ``results.posterior.X``, loaded on first
use: the run directory's checks (``rundir``) must not import ArviZ and PyMC."""

import importlib
import pkgutil

_SUBMODULES = {m.name for m in pkgutil.iter_modules(__path__)}


def __getattr__(name: str):
    # a submodule (``from bayes_densing.results import rundir``) is left to the import system
    if name.startswith("__") or name in _SUBMODULES:
        raise AttributeError(name)
    value = getattr(importlib.import_module(f"{__name__}.posterior"), name)
    globals()[name] = value     # looked up once, not at every call
    return value
