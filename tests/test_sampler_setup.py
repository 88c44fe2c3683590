"""Sampler setup: JAX's persistent compilation cache (where it goes, and that it can be turned
off) and the check of BlackJAX's version before PyMC's bridge would fail deep inside."""

import pytest

from bayes_densing.inference import sample as inference

CACHE_CASES = """
import os, jax
from bayes_densing.inference.sample import enable_compilation_cache as enable
def case(env, preset=None):
    for k in ("BAYES_DENSING_JAX_CACHE", "XDG_CACHE_HOME"):
        os.environ.pop(k, None)
    os.environ.update(env)
    jax.config.update("jax_compilation_cache_dir", preset)
    print(enable())
case({"BAYES_DENSING_JAX_CACHE": "off"})
case({"BAYES_DENSING_JAX_CACHE": "/tmp/bd-cache"})
case({"XDG_CACHE_HOME": "/tmp/xdg"})
case({}, preset="/tmp/mine")
from bayes_densing.inference.sample import cache_key
print(cache_key())
"""


def test_compilation_cache_setting():
    """Where the JAX compilation cache goes, or that it is off (in a fresh interpreter: JAX's
    configuration is process-wide)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", CACHE_CASES], capture_output=True, text=True,
                         timeout=120)
    *lines, key = out.stdout.split()
    assert key.startswith("jaxlib-") and "-cpu-" in key, out.stderr[-2000:]
    assert lines == ["None", f"/tmp/bd-cache/{key}", f"/tmp/xdg/bayes-densing/jax/{key}",
                     "/tmp/mine"], out.stderr[-2000:]


@pytest.mark.parametrize("version, ok", [("1.2.5", True), ("1.3", False), ("1.7.1", False)])
def test_an_incompatible_blackjax_is_refused_up_front(monkeypatch, version, ok):
    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "version", lambda name: version)
    if ok:
        inference._require_blackjax_bridge()
    else:
        with pytest.raises(inference.SamplerError, match=r"pip install 'blackjax>=1.2,<1.3'"):
            inference._require_blackjax_bridge()


@pytest.mark.parametrize("sampler, per_chain", [("nutpie", False), ("numpyro", True),
                                                ("pymc", True)])
def test_pymcs_samplers_get_starting_points_in_the_form_pymc_6_takes(
        sampler, per_chain, synth, small_config, monkeypatch):
    """PyMC 6 refuses per-chain initvals for nutpie (NotImplementedError after the model is
    compiled): nutpie gets one point, the others one per chain. pm.sample is faked so the
    optional nutpie need not be installed."""
    import sys
    import types

    from bayes_densing.data import load
    from bayes_densing.model.build import build_model

    cfg = small_config()
    cfg.set("sampler.sampler", sampler)
    cfg.set("sampler.mass_matrix", "diag")
    monkeypatch.setitem(sys.modules, "nutpie", types.ModuleType("nutpie"))
    seen = {}

    class Stop(Exception):
        pass

    def fake_sample(**kw):
        seen.update(kw)
        raise Stop

    monkeypatch.setattr(inference.pm, "sample", fake_sample)
    with pytest.raises(Stop):
        inference.sample(build_model(load(cfg, synth.csv), cfg), cfg.sampler, progressbar=False)
    starts = seen["initvals"]
    if per_chain:
        assert isinstance(starts, list) and len(starts) == cfg.sampler.chains
    else:
        assert isinstance(starts, dict) and "A" in starts
