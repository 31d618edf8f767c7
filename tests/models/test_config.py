import pytest

from vosbench.errors import ConfigError
from vosbench.models import ModelConfig, build_model, get_preset, list_presets
from vosbench.models.registry import preset_info


@pytest.mark.parametrize("name", list_presets())
def test_to_dict_from_dict_round_trip(name):
    cfg = get_preset(name)
    again = ModelConfig.from_dict(cfg.to_dict())
    assert again == cfg
    assert cfg.name == name


def test_nested_overrides_in_every_spelling():
    base = get_preset("scm-tiny")
    a = get_preset("scm-tiny", loss={"iou": 0.5})
    b = get_preset("scm-tiny", **{"loss.iou": 0.5})
    c = get_preset("scm-tiny", loss__iou=0.5)
    assert a == b == c
    assert a.loss.iou == 0.5 and a.loss.ce == base.loss.ce  # partial update keeps the other fields
    d = get_preset("scm-tiny", aspp_cfg={"rates": [1, 3]}, decoder__channels=32)
    assert d.aspp_cfg.rates == (1, 3) and d.decoder.channels == 32


def test_overrides_switch_parts():
    cfg = get_preset("scm-tiny", spatial_prior=False)
    assert not cfg.spatial_prior and cfg.aspp and cfg.refine
    assert build_model("scm-tiny", spatial_prior=False).spatial_prior is None
    assert build_model(cfg).config == cfg


@pytest.mark.parametrize(
    "overrides, key",
    [
        ({"spatial_priors": True}, "spatial_priors"),
        ({"loss": {"dice": 1.0}}, "loss.dice"),
        ({"loss.dice": 1.0}, "loss.dice"),
        ({"loss__dice": 1.0}, "loss.dice"),
        ({"key_dim.x": 1}, "key_dim.x"),
    ],
)
def test_unknown_keys_raise_config_error_naming_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        get_preset("stm-tiny", **overrides)


@pytest.mark.parametrize(
    "overrides",
    [
        {"aspp": "yes"},
        {"key_dim": 1.5},
        {"key_dim": 0},
        {"loss": {"ce": -1.0}},
        {"loss": 3},
        {"backbone": None},
    ],
)
def test_bad_values_raise_config_error(overrides):
    with pytest.raises(ConfigError):
        get_preset("stm-tiny", **overrides)


def test_unknown_preset_and_backbone():
    with pytest.raises(ConfigError, match="stm-r18"):
        get_preset("stm-r18")
    with pytest.raises(ConfigError, match="notanet"):
        build_model("stm-tiny", backbone="notanet")


def test_from_dict_rejects_non_dict():
    with pytest.raises(ConfigError):
        ModelConfig.from_dict(["stm"])  # type: ignore[arg-type]


def test_presets_have_descriptions():
    for name in list_presets():
        assert preset_info(name).description


def test_enabled_parts():
    assert get_preset("stm-r50").enabled_parts() == []
    assert get_preset("scm-r101").enabled_parts() == ["spatial_prior", "aspp", "refine"]
    assert get_preset("dstm-r50").enabled_parts() == ["depth", "aspp"]


def test_backbone_kwargs_build_a_narrower_trunk():
    narrow = build_model("stm-tiny", backbone_kwargs={"channels": [32, 64, 128, 256], "stem_width": 32})
    assert narrow.query_encoder.backbone.channels == (32, 64, 128)
    assert narrow.num_parameters() < build_model("stm-tiny").num_parameters()
    assert ModelConfig.from_dict(narrow.config.to_dict()) == narrow.config
    with pytest.raises(ConfigError, match="backbone_kwargs"):
        build_model("stm-tiny", backbone_kwargs={"no_such_arg": 1})
    with pytest.raises(ConfigError, match="backbone_kwargs"):
        get_preset("stm-tiny", backbone_kwargs=[1, 2])
