"""TOML configs: defaults, dotted overrides, unknown keys, round trip of the resolved config."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vosbench.errors import ConfigError
from vosbench.train.config import TrainConfig, load_config, write_config

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_overrides_and_types(tmp_path: Path) -> None:
    p = _write(tmp_path, '[model]\npreset = "scm-tiny"\n[optim]\nlr = 1e-5\n[data]\ncrop = [96, 128]\n')
    cfg = load_config(p, ["optim.lr=3e-4", "data.crop=[64, 80]", "train.precision=fp32", "data.root=/x/y",
                          "model.overrides.key_dim=16", "train.epochs=2"])
    assert cfg.model.preset == "scm-tiny"
    assert cfg.optim.lr == 3e-4 and cfg.data.crop == (64, 80) and cfg.train.precision == "fp32"
    assert cfg.data.root == "/x/y" and cfg.model.overrides == {"key_dim": 16} and cfg.train.epochs == 2
    assert cfg.optim.betas == (0.9, 0.999)  # default kept


@pytest.mark.parametrize("override,key", [("optim.lrr=1", "optim.lrr"), ("trian.epochs=3", "trian"),
                                          ("data.sources=[{kind='davis', wieght=2.0}]", "data.sources[0].wieght")])
def test_unknown_key_is_named(tmp_path: Path, override: str, key: str) -> None:
    p = _write(tmp_path, "")
    with pytest.raises(ConfigError, match=re.escape(f"unknown config key '{key}'")):
        load_config(p, [override])


def test_unknown_key_in_file_is_named(tmp_path: Path) -> None:
    p = _write(tmp_path, "[train]\nbatchsize = 4\n")
    with pytest.raises(ConfigError, match="train.batchsize"):
        load_config(p)


@pytest.mark.parametrize("override,msg", [("train.epochs=ten", "train.epochs must be an integer"),
                                          ("data.crop=[1,2,3]", "data.crop"), ("train.precision=fp8", "train.precision"),
                                          ("data.stage=videos", "data.stage"), ("optim.lr=0", "optim.lr"),
                                          ("optim.betas=[0.9, 1.0]", r"optim.betas\[1\] must be in \[0, 1\)"),
                                          ("optim.lr_decay=0", "optim.lr_decay must be > 0"),
                                          ("optim.grad_clip=-1", "optim.grad_clip must be >= 0"),
                                          ("curriculum.ramp_epochs=-2", "curriculum.ramp_epochs must be >= 0"),
                                          ("curriculum.end_skip=-1", "curriculum.end_skip must be >= 0"),
                                          ("noequals", "expected key=value")])
def test_bad_values(tmp_path: Path, override: str, msg: str) -> None:
    with pytest.raises(ConfigError, match=msg):
        load_config(_write(tmp_path, ""), [override])


def test_missing_and_invalid_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(_write(tmp_path, "[train\n"))


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, '[[data.sources]]\nkind = "davis"\nroot = "a b"\nweight = 2.0\n'
                                       '[[data.sources]]\nkind = "youtube"\nroot = "yt"\nweight = 1.0\n'),
                      ['model.overrides.loss={lovasz=1.0}', 'data.root="q\\"uote"'])
    write_config(tmp_path / "out.toml", cfg)
    again = load_config(tmp_path / "out.toml")
    assert again == cfg
    assert [s.kind for s in again.data.sources] == ["davis", "youtube"]


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_configs_load(path: Path) -> None:
    cfg = load_config(path)
    assert isinstance(cfg, TrainConfig)
    assert cfg.model.preset.split("-")[0] in path.name


def test_data_fitted_to_smaller_frames_scales_crop_and_short_side() -> None:
    from vosbench.train.config import DataSection

    main = DataSection(crop=(384, 640), short_side=(384, 1080))
    fitted = main.fitted_to_frames(96)  # factor 96/384 = 1/4
    assert fitted.crop == (96, 160) and fitted.short_side == (96, 270)
    assert main.crop == (384, 640)  # the original is left alone
    pre = DataSection(crop=(384, 384), short_side=(384, 512))
    assert pre.fitted_to_frames(96).crop == (96, 96) and pre.fitted_to_frames(96).short_side == (96, 128)
    # 100/384: 384 -> 100 -> floored to 96, 640 -> 166.7 -> 160; short side 100, 281.25 -> 281
    odd = main.fitted_to_frames(100)
    assert odd.crop == (96, 160) and odd.short_side == (100, 281)
    # the stride is the floor: 10 px frames still get a 16-pixel crop
    assert main.fitted_to_frames(10).crop == (16, 16) and main.fitted_to_frames(10).short_side == (10, 28)
    # portrait crop: the short side is the width
    assert DataSection(crop=(640, 384), short_side=(384, 1080)).fitted_to_frames(192).crop == (320, 192)
    with pytest.raises(ValueError):
        main.fitted_to_frames(0)


@pytest.mark.parametrize("frames, crop", [(480, (384, 640)), (384, (384, 640)), (240, (96, 160)), (96, (96, 160))])
def test_data_fitted_to_frames_at_least_the_crop_changes_nothing(frames: int, crop: tuple[int, int]) -> None:
    """DAVIS 480p under the full-size crops, the `small` and `tiny` profiles under the CPU configs'."""
    from vosbench.train.config import DataSection

    data = DataSection(crop=crop, short_side=(crop[0], 2 * crop[0]))
    assert data.fitted_to_frames(frames) is data
