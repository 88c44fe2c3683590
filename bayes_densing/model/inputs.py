"""What a model takes as runtime inputs instead of constants, so that many fits share one
compiled program: 0/1 weights of scores and benchmarks (benchmark subsets, leave-one-out), the
correct counts (simulation-based calibration), and the prior settings with D0 (sensitivity
grids)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from types import SimpleNamespace

import numpy as np

from bayes_densing.model.priors import INPUTS

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


@dataclass(frozen=True)
class Inputs:
    """``weights = (obs_weight, bench_weight)``, ``counts = (k, binomln)`` (with weights only)
    and ``settings = (priors, d0)`` (:func:`setting_inputs`), each symbolic or None."""
    weights: tuple | None = None
    counts: tuple | None = None
    settings: tuple | None = None

    def priors(self, config):
        """The prior settings: symbolic inputs, or the config's numbers."""
        return config.priors if self.settings is None else self.settings[0]


def setting_inputs(config) -> tuple:
    """A vector input holding the prior settings of ``priors.INPUTS`` and then D0, with
    ``(priors, d0)`` built from its elements (and ``config``'s other settings, as numbers) for
    ``build_model(..., settings=...)``; :func:`setting_values` gives the vector's values.
    Returns ``(vector, (priors, d0))``."""
    import pytensor.tensor as pt

    vector = pt.vector("settings")
    values = {f.name: getattr(config.priors, f.name) for f in fields(config.priors)}
    values.update({name: vector[i] for i, name in enumerate(INPUTS)})
    return vector, (SimpleNamespace(**values), vector[len(INPUTS)])


def setting_values(config) -> np.ndarray:
    """The values of :func:`setting_inputs`' vector under ``config``."""
    return np.asarray([getattr(config.priors, name) for name in INPUTS] + [config.model.d0],
                      dtype=float)


def log_of(x):
    """ln of a prior setting: a number, or an element of setting_inputs' vector."""
    if isinstance(x, (int, float)):
        return math.log(x)
    import pytensor.tensor as pt

    return pt.log(x)


def std_normal_logp(x):
    """log N(x | 0, 1): the density given to a parameter that a weighted fit leaves without data."""
    return -0.5 * x * x - HALF_LOG_2PI
