"""Initial weights of a run: partial init from a checkpoint, strict mode, refusing random backbones."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from vosbench.errors import CheckpointError, ConfigError
from vosbench.models import build_model, get_preset, load_checkpoint, save_checkpoint
from vosbench.train.config import TrainConfig, apply_overrides, load_config, write_config
from vosbench.train.init import check_init, load_init
from vosbench.train.loop import preflight, train


@pytest.fixture(scope="module")
def stm_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("ckpt") / "stm.pt"
    save_checkpoint(path, build_model("stm-tiny"))
    return path


def test_scm_starts_from_a_trained_stm_loading_what_matches(stm_checkpoint: Path) -> None:
    source = torch.load(stm_checkpoint, weights_only=True)["state_dict"]
    cfg = get_preset("scm-tiny")
    torch.manual_seed(2)
    model = build_model(cfg)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    plan = load_init(model, stm_checkpoint, cfg, strict=False)
    state = model.state_dict()
    # shared parts are the checkpoint's, new parts (ASPP replaces STM's context conv, refine, prior) keep their init
    for key in ("query_encoder.backbone.body.layer2.0.conv1.weight", "memory_encoder.key_value.value.weight",
                "decoder.pred.weight"):
        assert torch.equal(state[key], source[key]) and key in plan.loaded
    for key in [k for k in state if k.startswith(("spatial_prior.", "refine.", "context."))]:
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(state[key], fresh[key]) and key in plan.initialised
    assert "context.weight" in plan.dropped  # STM's 3x3 context conv has no place in SCM's ASPP
    table = plan.table()
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines()[2:]}
    assert rows["spatial_prior"][0] == "0" and int(rows["spatial_prior"][2]) > 0
    n_backbone = sum(1 for k in state if k.startswith("query_encoder.backbone.") and not k.endswith("num_batches_tracked"))
    assert int(rows["query_encoder.backbone"][0]) == n_backbone and rows["query_encoder.backbone"][2] == "0"
    assert plan.backbones_loaded()


def test_depth_channel_is_added_to_the_input_convs(stm_checkpoint: Path) -> None:
    source = torch.load(stm_checkpoint, weights_only=True)["state_dict"]
    cfg = get_preset("dstm-tiny-depth")
    model = build_model(cfg)
    plan = load_init(model, stm_checkpoint, cfg, strict=False)
    key = "memory_encoder.backbone.body.conv1.weight"  # STM: RGB + 2 mask channels; D-STM: RGB + depth + 2 masks
    w, src = model.state_dict()[key], source[key]
    assert key in plan.adapted and w.shape[1] == src.shape[1] + 1
    torch.testing.assert_close(w[:, :3], src[:, :3])
    torch.testing.assert_close(w[:, 3], src[:, :3].mean(dim=1))
    torch.testing.assert_close(w[:, 4:], src[:, 3:])
    # the shape-only preflight check reaches the same decisions
    assert check_init(stm_checkpoint, cfg, strict=False).adapted == plan.adapted


def test_strict_mode_keeps_the_exact_check(stm_checkpoint: Path) -> None:
    cfg = get_preset("scm-tiny")
    with pytest.raises(CheckpointError, match="differs"):
        check_init(stm_checkpoint, cfg, strict=True)
    with pytest.raises(CheckpointError, match="differs"):
        load_init(build_model(cfg), stm_checkpoint, cfg, strict=True)
    assert check_init(stm_checkpoint, get_preset("stm-tiny"), strict=True).complete


def test_another_trunk_loads_no_backbone_tensor(tmp_path: Path) -> None:
    """resnest14d and resnet18 share some BN names and shapes by chance; none of them may load."""
    path = tmp_path / "other.pt"
    save_checkpoint(path, build_model("stm-tiny", backbone="resnest14d"))
    plan = check_init(path, get_preset("stm-tiny"), strict=False)
    assert not any(k.startswith(("query_encoder.backbone.", "memory_encoder.backbone.")) for k in plan.loaded)
    assert "query_encoder.backbone.body.bn1.weight" in plan.initialised
    assert "query_encoder.backbone.body.bn1.weight" in plan.dropped and not plan.backbones_loaded()
    assert "decoder.pred.weight" in plan.loaded  # the head behind the trunk still fits


def test_run_prints_the_table_and_trains_from_the_partial_init(
    tiny_config: Callable[..., TrainConfig], stm_checkpoint: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    cfg = tiny_config("model.preset=scm-tiny", f"train.init_checkpoint={stm_checkpoint}", "train.allow_random_init=false")
    result = train(cfg, tmp_path / "run", max_steps=1, device="cpu")
    assert result.step == 1
    assert any("init from" in r.getMessage() and "spatial_prior" in r.getMessage() for r in caplog.records)


def test_random_backbones_are_refused_unless_allowed(tiny_config: Callable[..., TrainConfig], tmp_path: Path,
                                                     stm_checkpoint: Path) -> None:
    cfg = tiny_config("train.allow_random_init=false")
    with pytest.raises(ConfigError, match="model.backbone_weights") as err:
        preflight(cfg, tmp_path / "r", resume=False)
    assert "--allow-random-init" in str(err.value)
    preflight(cfg, tmp_path / "r", resume=False, allow_random_init=True)
    # an init checkpoint that fills the backbones counts as a start from trained weights
    preflight(tiny_config("train.allow_random_init=false", f"train.init_checkpoint={stm_checkpoint}"),
              tmp_path / "r", resume=False)
    # a checkpoint of another backbone leaves them random: refused again
    other = tmp_path / "resnest.pt"
    save_checkpoint(other, build_model("stm-tiny", backbone="resnest14d"))
    with pytest.raises(ConfigError, match="random backbones"):
        preflight(tiny_config("train.allow_random_init=false", f"train.init_checkpoint={other}"),
                  tmp_path / "r", resume=False)
    assert not (tmp_path / "r").exists()


def test_set_none_clears_an_optional_key(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    write_config(path, TrainConfig.from_dict(apply_overrides({}, [
        "train.init_checkpoint=runs/pre/last.pt", "model.overrides.backbone_weights=w.pth", "train.amp=bf16"])))
    cfg = load_config(path, ["train.init_checkpoint=none", "model.overrides.backbone_weights=none", "train.amp=none"])
    assert cfg.train.init_checkpoint == "" and "backbone_weights" not in cfg.model.overrides
    assert cfg.train.amp == "none"  # not an optional key: the word itself


def test_full_size_configs_name_their_papers_imagenet_weights() -> None:
    root = Path(__file__).resolve().parents[2] / "configs"
    expected = {"stm-r50": "timm:resnet50.tv_in1k", "scm-r101": "timm:resnest101e.in1k",
                "dstm-r50": "timm:resnest50d.in1k"}
    for name, tag in expected.items():
        for stage in ("pretrain", "main"):
            cfg = load_config(root / f"{name}-{stage}.toml")
            model_cfg = get_preset(cfg.model.preset, **cfg.model.overrides)
            assert model_cfg.backbone_weights == tag, (name, stage)
            assert not cfg.train.allow_random_init
