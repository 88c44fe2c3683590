"""A family of fits of one compiled log density (benchmark subsets, simulated datasets, refits):
each variant's seed from a stable key of the variant, and the adapted state a variant starts
from, persisted under a name so that another process can start from it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bayes_densing.sampling.dense_nuts import Draws

FORMAT = 1     # of a persisted state


def variant_seed(seed: int, key: str) -> int:
    """The seed of one variant: NumPy's ``SeedSequence`` of the family's ``seed`` and the
    variant's ``key`` (its name, as UTF-8 bytes), the same in every process and on every
    machine (Python's ``hash()`` of a string is salted per process). Below 2**31, as JAX's
    ``PRNGKey`` takes it."""
    sequence = np.random.SeedSequence(int(seed), spawn_key=tuple(key.encode("utf-8")))
    return int(sequence.generate_state(1, dtype=np.uint32)[0] >> 1)


def state_arrays(state: Draws, name: str) -> dict[str, np.ndarray]:
    """``state``'s adapted metric, step size and each chain's last position as NumPy arrays
    (the draws are not kept), under ``name`` (the parent fit it came from): what
    :func:`save_state` writes and a sweep's worker sends back."""
    metric = state.metric if isinstance(state.metric, tuple) else (state.metric,)
    names = sorted(state.last[0])
    arrays = {f"metric_{i}": np.asarray(m) for i, m in enumerate(metric)}
    arrays.update({f"last_{i}": np.stack([np.asarray(p[n]) for p in state.last])
                   for i, n in enumerate(names)})
    meta = {"format": FORMAT, "name": name, "step_size": float(state.step_size),
            "metric_parts": len(metric), "conditional": isinstance(state.metric, tuple),
            "parameters": names}
    return {"meta": np.array(json.dumps(meta)), **arrays}


def state_from_arrays(arrays, name: str | None = None, where: str = "the warm state") -> Draws:
    """The :class:`Draws` (without draws) of :func:`state_arrays`' output, to pass as a run's
    ``warm``; ``name``: the parent expected (a ValueError names both if another is found)."""
    meta = json.loads(str(arrays["meta"]))
    if meta.get("format") != FORMAT:
        raise ValueError(f"{where}: a warm state of format {meta.get('format')}, "
                         f"this version reads {FORMAT}")
    if name is not None and meta["name"] != name:
        raise ValueError(f"{where}: the warm state of {meta['name']!r}, not of {name!r}")
    metric = tuple(arrays[f"metric_{i}"] for i in range(meta["metric_parts"]))
    last = {n: arrays[f"last_{i}"] for i, n in enumerate(meta["parameters"])}
    chains = len(next(iter(last.values())))
    return Draws(z={}, stats={}, seconds=0.0,
                 metric=metric if meta["conditional"] else metric[0],
                 step_size=meta["step_size"],
                 last=[{n: v[c] for n, v in last.items()} for c in range(chains)])


def save_state(state: Draws, path: str | Path, name: str) -> Path:
    """Write :func:`state_arrays` to ``path`` (NumPy's ``.npz``), through a temporary file
    and a rename, so a reader never sees half a state."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    with open(tmp, "wb") as f:
        np.savez(f, **state_arrays(state, name))
    tmp.replace(path)
    return path


def load_state(path: str | Path, name: str | None = None) -> Draws:
    """The state :func:`save_state` wrote, as a :class:`Draws` without draws."""
    with np.load(path) as f:
        return state_from_arrays({k: f[k] for k in f.files}, name, where=str(path))
