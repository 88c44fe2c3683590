"""A family of fits (``sampling/families.py``): each variant's seed from a stable key, and the
parent state persisted and read back, so that a run started from the file is the run started
from memory."""

import os
import subprocess
import sys

import numpy as np
import pytest

from bayes_densing.config import SamplerConfig
from bayes_densing.sampling.dense_nuts import Draws, Sampler
from bayes_densing.sampling.density import LogDensity
from bayes_densing.sampling.families import load_state, save_state, variant_seed


def test_a_variants_seed_is_stable_across_processes_and_differs_between_variants():
    keys = ["mmlu+gsm8k", "mmlu", "gsm8k", "dataset 0", "Qwen/Qwen1.5-0.5B", ""]
    here = [variant_seed(0, k) for k in keys]
    assert len(set(here)) == len(keys) and all(0 <= s < 2 ** 31 for s in here)
    assert variant_seed(1, "mmlu") != variant_seed(0, "mmlu")
    code = ("from bayes_densing.sampling.families import variant_seed; "
            f"print([variant_seed(0, k) for k in {keys!r}])")
    for hash_seed in ("1", "2"):          # Python's str hash differs between these processes
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env, check=True)
        assert done.stdout.strip() == str(here)


def _sampler(mass_matrix: str) -> Sampler:
    """Two global parameters and four per-target latents centred on the first (the conditional
    metric's layout), their mean a runtime input."""
    def logp(g, z, shift):
        return -0.5 * ((g - shift) ** 2).sum() - 0.5 * ((z - g[0]) ** 2).sum()

    density = LogDensity(logp=logp, names=("g", "z"),
                         initial_point={"g": np.zeros(2), "z": np.zeros(4)},
                         latent=frozenset({"z"}))
    return Sampler(density, SamplerConfig(chains=2, draws=60, tune=60, mass_matrix=mass_matrix),
                   parallel=False)


@pytest.mark.parametrize("mass_matrix", ["dense", "conditional"])
def test_a_run_from_the_persisted_state_is_the_run_from_memory(mass_matrix, tmp_path):
    sampler = _sampler(mass_matrix)
    assert sampler.layout == mass_matrix     # the conditional's metric is a tuple of arrays
    args = (np.array([1.0, -2.0]),)
    start = {"g": np.zeros(2), "z": np.zeros(4)}
    parent = sampler.run([start] * 2, args, seed=3, progressbar=False)
    path = save_state(parent, tmp_path / "parent.npz", "all")
    assert not list(tmp_path.glob(".*partial"))
    loaded = load_state(path, "all")
    assert isinstance(loaded, Draws) and loaded.step_size == parent.step_size
    for got, want in zip(*(m if isinstance(m, tuple) else (m,)
                           for m in (loaded.metric, parent.metric))):
        np.testing.assert_array_equal(got, want)
    child = dict(seed=variant_seed(3, "child"), tune=20, progressbar=False)
    from_file = sampler.run(loaded.last, args, warm=loaded, **child)
    from_memory = sampler.run(parent.last, args, warm=parent, **child)
    for name in ("g", "z"):
        np.testing.assert_array_equal(from_file.z[name], from_memory.z[name])
    with pytest.raises(ValueError, match="'all', not of 'other'"):
        load_state(path, "other")


def test_a_state_of_another_format_is_refused(tmp_path):
    state = Draws(z={}, stats={}, seconds=0.0, metric=np.eye(3), step_size=0.5,
                  last=[{"x": np.zeros(3)}])
    path = save_state(state, tmp_path / "s.npz", "p")
    with np.load(path) as f:
        arrays = dict(f)
    arrays["meta"] = np.array(str(arrays["meta"]).replace('"format": 1', '"format": 99'))
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="format 99"):
        load_state(path)
