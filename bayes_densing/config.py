"""Run configuration: what data, which model, which priors, how to sample.

A configuration is read from a TOML preset (``models/*.toml``, shipped inside the wheel as
``bayes_densing/presets``) or a user's TOML file, then overridden by command-line options, and
written back verbatim as ``config.toml`` in the run directory so that a run can be redone.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field, fields
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import tomli_w

from bayes_densing.model.priors import SIGNED, PriorConfig

TRENDS = ("frontier", "mean", "envelope", "changepoint")
MARGINAL = "marginal"   # model.changepoint: the date marginalised over a discrete prior
LIKELIHOODS = ("betabinomial", "robust")
SAMPLERS = ("numpyro", "pymc", "blackjax", "nutpie")
# the shortest warm-up of the default sampler (dense_nuts) whose windows estimate its metric
# twice, the variances and then the covariance, each from at least dense_nuts.MIN_DRAWS draws
# of one chain, whatever the draws (tests/test_short_warmup.py derives it from the schedule)
MIN_TUNE = 21


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message says which and why."""


@dataclass
class DataConfig:
    dataset: str = "open-base-llms"   # bundled dataset used when no --data is given
    benchmarks: list[str] = field(default_factory=list)  # empty: every benchmark in the data
    since: str = ""                   # keep target models released on/after this date
    until: str = ""                   # ... and on/before this date
    reference: str = ""               # reference family; empty: `role` column or dataset default
    params: str = "total"             # "total" or "active": which size density divides by
    base_only: bool = True            # drop rows flagged is_base = false
    exclude_specialists: bool = False  # drop rows flagged specialist = true
    exclude_families: list[str] = field(default_factory=list)
    exclude_models: list[str] = field(default_factory=list)  # model names to leave out


@dataclass
class ModelSpec:
    trend: str = "frontier"
    likelihood: str = "betabinomial"
    d0: float = 1.0                   # D0, trillions of tokens at which N̂ is evaluated
    date_origin: str = "2023-02-24"   # t = 0 for the reported intercept (Llama-1's release)
    changepoint: str = "2022-11-30"   # ChatGPT; "marginal": summed over month starts
    data_term: str = "auto"           # "auto", "on", "off": the b·D^-β term of the loss law
    ceiling: str = "fixed"            # "fixed": c_j = 1 − d_j; "free": c_j/(1 − d_j) ~ Beta
    reparam: str = "shear"            # "shear" (targets move with the curves) or "centred"
    curves: str = "cut"               # "cut": curves from the references alone (cut.py); "joint"
    target_offsets: str = "on"        # the targets' ln size shifted per benchmark (δ_j); "off"
    release_groups: str = "off"       # "on": a shared trend shift u_g per family and release day

    def months(self, dates):
        """The model's time t: months from ``date_origin`` of a date or an array of dates."""
        import numpy as np
        import pandas as pd

        from bayes_densing.model.laws import DAYS_PER_MONTH

        days = (pd.to_datetime(dates) - pd.Timestamp(self.date_origin)) / pd.Timedelta(days=1)
        return np.asarray(days, dtype=float) / DAYS_PER_MONTH


CPU_DEVICES_ENV = "BAYES_DENSING_CPU_DEVICES"


@dataclass
class SamplerConfig:
    sampler: str = "numpyro"
    device: str = "cpu"
    chains: int = 4
    draws: int = 1000
    tune: int = 1000
    seed: int = 0
    target_accept: float = 0.9        # benchmarks/README.md, "Target acceptance"
    chain_method: str = "auto"        # numpyro: "vectorized", "parallel" or "auto"
    mass_matrix: str = "auto"         # numpyro: auto, dense, conditional (dense_nuts.py) or diag
    cpu_devices: int = 0              # XLA host devices on the CPU; 0: one per chain
    curve_draws: int = 0              # cut: curve draws per chain the targets are fitted given (0: as ESS needs)
    inner_steps: int = 5              # cut: NUTS transitions of the targets per curve draw

    @property
    def runs_cut(self) -> bool:
        """Whether this sampler runs the cut's nested MCMC (only ours: ``dense_nuts``)."""
        return self.sampler == "numpyro" and self.mass_matrix != "diag"

    @property
    def host_devices(self) -> int:
        """The XLA host devices to make on the CPU: ``cpu_devices``, else the process's share
        of the cores when it is one of several workers (``$BAYES_DENSING_CPU_DEVICES``, set by
        ``distributed.runner`` for a local cluster's workers), else one per chain."""
        return (self.cpu_devices or int(os.environ.get(CPU_DEVICES_ENV) or 0)
                or self.chains)


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelSpec = field(default_factory=ModelSpec)
    priors: PriorConfig = field(default_factory=PriorConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)

    # -- validation ------------------------------------------------------------------------
    def validate(self) -> "Config":
        m, s, d = self.model, self.sampler, self.data
        _one_of("model.trend", m.trend, TRENDS)
        _one_of("model.likelihood", m.likelihood, LIKELIHOODS)
        _one_of("model.data_term", m.data_term, ("auto", "on", "off"))
        _one_of("model.ceiling", m.ceiling, ("fixed", "free"))
        _one_of("model.target_offsets", m.target_offsets, ("off", "on"))
        _one_of("model.release_groups", m.release_groups, ("off", "on"))
        _one_of("model.reparam", m.reparam, ("shear", "affine", "centred"))
        _one_of("model.curves", m.curves, ("cut", "joint"))
        _one_of("sampler.sampler", s.sampler, SAMPLERS)
        _one_of("sampler.device", s.device, ("cpu", "gpu"))
        _one_of("sampler.chain_method", s.chain_method, ("auto", "vectorized", "parallel"))
        _one_of("sampler.mass_matrix", s.mass_matrix, ("auto", "dense", "conditional", "diag"))
        _one_of("data.params", d.params, ("total", "active"))
        if m.d0 <= 0:
            raise ConfigError(f"model.d0 must be positive (trillions of tokens), got {m.d0}")
        if s.cpu_devices < 0:
            raise ConfigError(f"sampler.cpu_devices must be 0 (one per chain) or more, "
                              f"got {s.cpu_devices}")
        if s.curve_draws < 0:
            raise ConfigError(f"sampler.curve_draws must be 0 (by ESS) or more, got {s.curve_draws}")
        for name in ("chains", "draws", "tune", "inner_steps"):
            if getattr(s, name) < (1 if name != "tune" else 0):
                raise ConfigError(f"sampler.{name} must be positive, got {getattr(s, name)}")
        # ours only: NumPyro's and BlackJAX's own warm-ups adapt just the step size below 20
        # iterations, PyMC's keeps its first metric for 101 draws, nutpie's is its own
        if s.sampler == "numpyro" and s.mass_matrix != "diag" and s.tune < MIN_TUNE:
            raise ConfigError(f"--tune {s.tune} is too short: the warm-up needs at least "
                              f"{MIN_TUNE} iterations to adapt the sampler's metric "
                              f"(sampler.tune; the default is {SamplerConfig.tune})")
        if m.curves == "cut" and not s.runs_cut:
            raise ConfigError("model.curves = 'cut' runs on the default sampler (numpyro with "
                              "mass_matrix auto, dense or conditional); use model.curves = "
                              "'joint' with other samplers")
        if not 0.5 <= s.target_accept < 1:
            raise ConfigError(f"sampler.target_accept must be in [0.5, 1), got {s.target_accept}")
        for key in ("date_origin", "changepoint"):
            if not (key == "changepoint" and m.changepoint == MARGINAL):
                _parse_date(f"model.{key}", getattr(m, key))
        for key in ("since", "until"):
            if getattr(d, key):
                _parse_date(f"data.{key}", getattr(d, key))
        for f in fields(self.priors):
            if f.name not in SIGNED and getattr(self.priors, f.name) <= 0:
                raise ConfigError(f"priors.{f.name} must be positive, got {getattr(self.priors, f.name)}")
        return self

    # -- (de)serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config") -> "Config":
        cfg = cls()
        cfg.update(raw, source)
        return cfg

    def update(self, raw: dict[str, Any], source: str = "config") -> "Config":
        """Apply nested overrides ``{"section": {"key": value}}``; unknown keys are errors."""
        for section, values in raw.items():
            if section not in {f.name for f in fields(self)}:
                raise ConfigError(f"{source}: unknown section [{section}]; known: "
                                  f"{', '.join(f.name for f in fields(self))}")
            if not isinstance(values, dict):
                raise ConfigError(f"{source}: [{section}] must be a table")
            target = getattr(self, section)
            known = {f.name: f for f in fields(target)}
            for key, value in values.items():
                if key not in known:
                    raise ConfigError(f"{source}: unknown key {section}.{key}; known: "
                                      f"{', '.join(known)}")
                setattr(target, key, _coerce(f"{section}.{key}", getattr(target, key), value))
        return self

    def set(self, dotted: str, value: Any) -> "Config":
        """Override one key given as ``section.key`` (e.g. ``model.d0``)."""
        section, _, key = dotted.partition(".")
        return self.update({section: {key: value}}, source="override")

    def fall_back_to_joint(self, chosen: bool) -> bool:
        """Switch to ``model.curves = "joint"`` where the sampler cannot run the cut (only ours
        runs its nested MCMC) and the cut was not ``chosen`` explicitly; True if switched."""
        if self.model.curves == "cut" and not self.sampler.runs_cut and not chosen:
            self.model.curves = "joint"
            return True
        return False

    def set_items(self, items) -> "Config":
        """Apply ``KEY=VALUE`` strings (the command line's and the benchmark scripts' ``--set``)
        in order, with :meth:`set`."""
        for item in items:
            key, sep, value = item.partition("=")
            if not sep:
                raise ConfigError(f"--set {item!r}: write KEY=VALUE, e.g. priors.slope_sd=0.5")
            self.set(key.strip(), value.strip())
        return self


def _coerce(name: str, current: Any, value: Any) -> Any:
    if isinstance(current, bool):
        if isinstance(value, str):
            if value.lower() in ("true", "1", "yes"):
                return True
            if value.lower() in ("false", "0", "no"):
                return False
            raise ConfigError(f"{name} must be true or false, got {value!r}")
        return bool(value)
    if isinstance(current, list):
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return list(value)
    try:
        return type(current)(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a {type(current).__name__}, got {value!r}") from None


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _parse_date(name: str, value: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{name} must be a date YYYY-MM-DD, got {value!r}") from None


# --- presets ---------------------------------------------------------------------------------

def _preset_dirs() -> list[Path]:
    dirs = [Path(str(resources.files("bayes_densing") / "presets"))]
    dirs.append(Path(__file__).resolve().parent.parent / "models")  # source checkout
    return [d for d in dirs if d.is_dir()]


def list_presets() -> list[str]:
    return sorted({p.stem for d in _preset_dirs() for p in d.glob("*.toml")})


def load_config(preset_or_file: str | None = None) -> Config:
    """A Config from a preset name (``default``, ``paper``, …) or a path to a TOML file."""
    name = preset_or_file or "default"
    path = Path(name)
    if path.suffix != ".toml" or not path.exists():
        if path.suffix == ".toml":
            raise ConfigError(f"{name}: no such TOML file")
        found = [d / f"{name}.toml" for d in _preset_dirs() if (d / f"{name}.toml").exists()]
        if not found:
            raise ConfigError(f"unknown model preset {name!r}; presets: {', '.join(list_presets())}"
                              " (or give a path to a .toml file)")
        path = found[0]
    try:
        raw = upgraded(tomllib.loads(path.read_text(encoding="utf-8")))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    cfg = Config.from_dict(raw, source=str(path))
    cfg.fall_back_to_joint(chosen="curves" in raw.get("model", {}))
    return cfg.validate()


def upgraded(raw: dict) -> dict:
    """A config as read from TOML, with what older versions left implicit made explicit: a
    whole config written before ``model.curves`` existed (a run's ``config.toml``, every
    section present) ran the joint model, and one written before ``model.target_offsets``
    existed ran without offsets, and one written before ``model.release_groups`` without
    release groups."""
    if {f.name for f in fields(Config)} <= set(raw):
        raw.setdefault("model", {}).setdefault("curves", "joint")
        raw["model"].setdefault("target_offsets", "off")
        raw["model"].setdefault("release_groups", "off")
    return raw
