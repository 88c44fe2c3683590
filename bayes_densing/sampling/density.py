"""What the sampler samples: a log density written in JAX, with its parameters' names and shapes,
and the runtime inputs it takes besides them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class LogDensity:
    """``logp(*values, *inputs)``: the log density (a JAX scalar) of the parameters' unconstrained
    values, in the order of ``names``, and of the runtime inputs (weights, counts, fixed
    parameters) each run passes. ``initial_point``: each parameter's centre value, which also
    gives its shape. ``latent``: the parameters with one entry per target model, the
    conditional metric's per-target block (``conditional_metric``)."""

    logp: Callable
    names: tuple[str, ...]
    initial_point: dict
    latent: frozenset = field(default_factory=frozenset)
