"""Built-in presets: the papers' networks, their ablation rungs, and tiny CPU variants.

SCM ladder (SCM Table 2): ``stm-r50`` → ``stm-r101`` (ResNeSt-101) → ``scm-r101-head`` (+ASPP,
refine, IoU loss) → ``scm-r101`` (+spatial constraint).
D-STM ladder (D-STM Table 2): ``stm-r50`` → ``stm-s50`` (ResNeSt-50) → ``dstm-r50-lovasz`` →
``dstm-r50-depth`` → ``dstm-r50`` (+ASPP). Each ``*-tiny`` rung mirrors its full-size rung on a
resnet18 trunk with 64/128 key/value channels (the tiny ladders keep resnet18 throughout, so the
backbone rung is expressed with ``backbone="resnest14d"`` overrides if wanted).
"""

from __future__ import annotations

from typing import Any

from vosbench.models.config import ModelConfig
from vosbench.models.registry import register_preset

TINY = dict(
    backbone="resnet18",
    key_dim=64,
    value_dim=128,
    decoder={"channels": 64},
    refine_cfg={"channels": 16, "levels": 3},
)

STM = dict(loss={"ce": 1.0, "iou": 0.0, "lovasz": 0.0})
SCM_HEAD = dict(aspp=True, refine=True, loss={"ce": 1.0, "coarse_ce": 1.0, "iou": 1.0, "lovasz": 0.0})
SCM = dict(SCM_HEAD, spatial_prior=True)
DSTM_LOVASZ = dict(loss={"ce": 1.0, "iou": 0.0, "lovasz": 1.0})
DSTM_DEPTH = dict(DSTM_LOVASZ, depth=True)
DSTM = dict(DSTM_DEPTH, aspp=True)


def _make(name: str, *parts: dict[str, Any], overrides: dict[str, Any]) -> ModelConfig:
    cfg = ModelConfig(name=name)
    for part in parts:
        cfg = cfg.replace(**part)
    return cfg.replace(**overrides)


# --- full-size -------------------------------------------------------------------------------


@register_preset("stm-r50", "STM baseline: ResNet-50, key 128 / value 512, CE")
def stm_r50(**overrides: Any) -> ModelConfig:
    return _make("stm-r50", dict(backbone="resnet50"), STM, overrides=overrides)


@register_preset("stm-r101", "SCM rung 1: STM on ResNeSt-101")
def stm_r101(**overrides: Any) -> ModelConfig:
    return _make("stm-r101", dict(backbone="resnest101e"), STM, overrides=overrides)


@register_preset("scm-r101-head", "SCM rung 2: + segmentation head (ASPP, refine, CE+IoU)")
def scm_r101_head(**overrides: Any) -> ModelConfig:
    return _make("scm-r101-head", dict(backbone="resnest101e"), SCM_HEAD, overrides=overrides)


@register_preset("scm-r101", "SCM: ResNeSt-101, spatial prior, ASPP, refine, CE+IoU")
def scm_r101(**overrides: Any) -> ModelConfig:
    return _make("scm-r101", dict(backbone="resnest101e"), SCM, overrides=overrides)


@register_preset("stm-s50", "D-STM rung 1: STM on ResNeSt-50")
def stm_s50(**overrides: Any) -> ModelConfig:
    return _make("stm-s50", dict(backbone="resnest50d"), STM, overrides=overrides)


@register_preset("dstm-r50-lovasz", "D-STM rung 2: + Lovász loss")
def dstm_r50_lovasz(**overrides: Any) -> ModelConfig:
    return _make("dstm-r50-lovasz", dict(backbone="resnest50d"), DSTM_LOVASZ, overrides=overrides)


@register_preset("dstm-r50-depth", "D-STM rung 3: + depth input")
def dstm_r50_depth(**overrides: Any) -> ModelConfig:
    return _make("dstm-r50-depth", dict(backbone="resnest50d"), DSTM_DEPTH, overrides=overrides)


@register_preset("dstm-r50", "D-STM: ResNeSt-50, depth, ASPP, CE+Lovász")
def dstm_r50(**overrides: Any) -> ModelConfig:
    return _make("dstm-r50", dict(backbone="resnest50d"), DSTM, overrides=overrides)


# --- tiny CPU variants ------------------------------------------------------------------------


@register_preset("stm-tiny", "STM on resnet18, key 64 / value 128 (CPU)")
def stm_tiny(**overrides: Any) -> ModelConfig:
    return _make("stm-tiny", TINY, STM, overrides=overrides)


@register_preset("scm-tiny-head", "SCM rung 2, tiny: + ASPP, refine, CE+IoU (CPU)")
def scm_tiny_head(**overrides: Any) -> ModelConfig:
    return _make("scm-tiny-head", TINY, SCM_HEAD, overrides=overrides)


@register_preset("scm-tiny", "SCM, tiny: spatial prior, ASPP, refine, CE+IoU (CPU)")
def scm_tiny(**overrides: Any) -> ModelConfig:
    return _make("scm-tiny", TINY, SCM, overrides=overrides)


@register_preset("dstm-tiny-lovasz", "D-STM rung 2, tiny: + Lovász (CPU)")
def dstm_tiny_lovasz(**overrides: Any) -> ModelConfig:
    return _make("dstm-tiny-lovasz", TINY, DSTM_LOVASZ, overrides=overrides)


@register_preset("dstm-tiny-depth", "D-STM rung 3, tiny: + depth (CPU)")
def dstm_tiny_depth(**overrides: Any) -> ModelConfig:
    return _make("dstm-tiny-depth", TINY, DSTM_DEPTH, overrides=overrides)


@register_preset("dstm-tiny", "D-STM, tiny: depth, ASPP, CE+Lovász (CPU)")
def dstm_tiny(**overrides: Any) -> ModelConfig:
    return _make("dstm-tiny", TINY, DSTM, overrides=overrides)
