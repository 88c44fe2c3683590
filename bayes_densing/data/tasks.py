"""Tasks: a benchmark as scored by one source (``bbh@swallow-v2``), chosen by full or base name.

Each task's item count and chance level come from the file's columns, else the registry.
"""

from __future__ import annotations

import pandas as pd

from bayes_densing.data import registry as benchmark_registry
from bayes_densing.data.messages import fail, line_numbers, show


def name_tasks(df: pd.DataFrame) -> None:
    """A benchmark from a named source is its own task, ``benchmark@source``: two harnesses (or
    two versions of one) score the same benchmark differently, so their scores never share a
    curve. A blank source leaves the benchmark's name as it is."""
    if "source" not in df.columns:
        return
    source = df["source"].str.strip().str.lower()
    named = source != ""
    df.loc[named, "benchmark"] = df.benchmark[named] + benchmark_registry.TASK_SEP + source[named]


def select_tasks(wanted, present, source) -> list[str]:
    """The tasks ``wanted`` names, in its order: a task by its full name, or a benchmark by its
    base name (every source's task of it). Unknown names are an error naming what exists."""
    def matches(name):
        return [name] if name in present else [
            t for t in present if benchmark_registry.base_benchmark(t) == name]

    wanted = [w.strip().lower() for w in wanted]
    unknown = [w for w in wanted if not matches(w)]
    if unknown:
        raise fail(source, f"column 'benchmark': {', '.join(unknown)} not in the data; "
                           f"available: {', '.join(present)}")
    return list(dict.fromkeys(t for w in wanted for t in matches(w)))


def items_and_chance(df: pd.DataFrame, benchmarks, source) -> tuple[list[int], list[float]]:
    """Each task's item count and chance level: the file's n_items/chance columns, else the
    registry's entry of its benchmark."""
    chance, n_items = [], []
    for b in benchmarks:
        rows = df[df.benchmark == b]
        if rows.model.nunique() < 2:
            raise fail(source, f"{line_numbers(rows.line)}, column 'benchmark': {show(b)} has scores for "
                               f"{rows.model.nunique()} model only; drop it or add models")
        known = benchmark_registry.lookup(b)
        given_n = rows.n_items.dropna().unique() if "n_items" in rows.columns else []
        given_c = rows.chance.dropna().unique() if "chance" in rows.columns else []
        for col, given in (("n_items", given_n), ("chance", given_c)):
            if len(given) > 1:
                raise fail(source, f"{line_numbers(rows.line)}, column {col!r}: benchmark {show(b)} has "
                                   f"{len(given)} different values ({', '.join(f'{g:g}' for g in given)}); "
                                   "give one value per benchmark")
        if len(given_n):
            n_items.append(int(given_n[0]))
        elif known:
            n_items.append(known.n_items)
        else:
            raise fail(source, f"{line_numbers(rows.line)}, column 'n_items': benchmark {show(b)} is not in "
                               "the registry; add an n_items column with its number of questions "
                               "(and optionally a chance column with its random-guess score)")
        chance.append(float(given_c[0]) if len(given_c) else (known.chance if known else 0.0))
    return n_items, chance
