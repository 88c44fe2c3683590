import tomllib

import pytest

from bayes_densing.config import Config, ConfigError, list_presets, load_config


def test_every_preset_loads_and_validates():
    assert {"default", "paper", "robust", "changepoint"} <= set(list_presets())
    for name in list_presets():
        assert isinstance(load_config(name).validate(), Config)
    assert load_config("paper").model.trend == "envelope"
    assert load_config("paper").data.benchmarks == ["mmlu", "bbh", "math_hard", "humaneval"]
    assert load_config("changepoint").model.trend == "changepoint"
    assert load_config("robust").model.likelihood == "robust"


def test_toml_round_trip(tmp_path):
    cfg = load_config("paper")
    cfg.set("priors.slope_sd", "0.5")
    path = tmp_path / "my.toml"
    path.write_text(cfg.to_toml())
    again = load_config(str(path))
    assert again.to_dict() == cfg.to_dict()
    assert tomllib.loads(cfg.to_toml())["priors"]["slope_sd"] == 0.5


@pytest.mark.parametrize("key, value, match", [
    ("model.trend", "linear", "model.trend must be one of"),
    ("sampler.device", "tpu", "sampler.device must be one of"),
    ("model.d0", "-1", "model.d0 must be positive"),
    ("priors.phi", "0", "priors.phi must be positive"),
    ("data.since", "2023/01/01", "data.since must be a date"),
    ("sampler.chains", "two", "sampler.chains must be a int"),
])
def test_bad_values_are_clear_errors(key, value, match):
    cfg = Config()
    with pytest.raises(ConfigError, match=match):
        cfg.set(key, value).validate()


def test_unknown_keys_and_presets():
    with pytest.raises(ConfigError, match="unknown key model.trnd"):
        Config().set("model.trnd", "mean")
    with pytest.raises(ConfigError, match="unknown section"):
        Config().update({"modle": {"trend": "mean"}})
    with pytest.raises(ConfigError, match="unknown model preset 'nope'"):
        load_config("nope")


def test_list_and_bool_values_are_coerced():
    cfg = Config()
    cfg.set("data.benchmarks", "mmlu, gsm8k")
    cfg.set("data.base_only", "false")
    assert cfg.data.benchmarks == ["mmlu", "gsm8k"] and cfg.data.base_only is False
