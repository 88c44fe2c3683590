"""benchmarks/floor.py writes the default model directly in NumPyro as the speed floor of
issue #7; it is only a floor if it is the same model. Its log density must equal PyMC's at
random points on the unconstrained scale (with and without the data term and the target
offsets)."""

import sys
from pathlib import Path

import pytest

from bayes_densing.config import load_config
from bayes_densing.data import load

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import floor  # noqa: E402


@pytest.mark.parametrize("data_term, offsets", [("on", "on"), ("off", "off")])
def test_the_floor_is_the_same_model(synth, data_term, offsets):
    cfg = load_config("default")
    cfg.set("model.data_term", data_term)
    cfg.set("model.target_offsets", offsets)
    data = load(cfg, synth.csv)
    result = floor.check(data, cfg)
    assert result["equal"], result
