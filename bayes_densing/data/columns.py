"""The columns a scores file may have: required, model-level, numeric, and their aliases."""

from __future__ import annotations

from bayes_densing.data import registry as benchmark_registry

REQUIRED = ("model", "params", "release_date")
ALIASES = {"params_b": "params", "tokens_t": "tokens", "date": "release_date",
           "params_active_b": "params_active", "name": "model"}
METADATA = ("model", "family", "params", "params_active", "tokens", "release_date",
            "date_precision", "role", "suite", "is_base", "specialist", "in_densing_paper",
            "note", "n_items", "chance", "loss", "benchmark", "score", "source", "tokens_upper",
            "date_source", "continued_pretraining", "provenance", "shots")
MODEL_LEVEL = ("family", "params", "params_active", "tokens", "release_date", "role")
NUMERIC = ("params", "params_active", "tokens", "score", "n_items", "chance", "loss")


def column_name(column: str) -> str:
    name = column.strip().lower()
    return ALIASES.get(name, name)


def known_column(column: str) -> bool:
    name = column_name(column)
    return name in METADATA or benchmark_registry.lookup(name) is not None
