"""Built-in presets: the papers' networks, their ablation rungs, and tiny CPU variants.

SCM ladder (SCM Table 2): ``stm-r50`` → ``stm-r101`` (ResNeSt-101) → ``scm-r101-head`` (+ASPP,
refine, IoU loss) → ``scm-r101`` (+spatial constraint).
D-STM ladder (D-STM Table 2): ``stm-r50`` → ``stm-s50`` (ResNeSt-50) → ``dstm-r50-lovasz`` →
``dstm-r50-depth`` → ``dstm-r50`` (+ASPP). Each ``*-tiny`` rung mirrors its full-size rung on a
resnet18 trunk with 64/128 key/value channels (the tiny ladders keep resnet18 throughout, so the
backbone rung is expressed with ``backbone="resnest14d"`` overrides if wanted).
"""

from __future__ import annotations

from collections.abc import Callable
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


# name, description, parts applied in order (full-size rungs, then their tiny mirrors).
PRESETS: list[tuple[str, str, tuple[dict[str, Any], ...]]] = [
    ("stm-r50", "STM baseline: ResNet-50, key 128 / value 512, CE", (dict(backbone="resnet50"), STM)),
    ("stm-r101", "SCM rung 1: STM on ResNeSt-101", (dict(backbone="resnest101e"), STM)),
    (
        "scm-r101-head",
        "SCM rung 2: + segmentation head (ASPP, refine, CE+IoU)",
        (dict(backbone="resnest101e"), SCM_HEAD),
    ),
    (
        "scm-r101",
        "SCM: ResNeSt-101, spatial prior, ASPP, refine, CE+IoU",
        (dict(backbone="resnest101e"), SCM),
    ),
    ("stm-s50", "D-STM rung 1: STM on ResNeSt-50", (dict(backbone="resnest50d"), STM)),
    ("dstm-r50-lovasz", "D-STM rung 2: + Lovász loss", (dict(backbone="resnest50d"), DSTM_LOVASZ)),
    ("dstm-r50-depth", "D-STM rung 3: + depth input", (dict(backbone="resnest50d"), DSTM_DEPTH)),
    ("dstm-r50", "D-STM: ResNeSt-50, depth, ASPP, CE+Lovász", (dict(backbone="resnest50d"), DSTM)),
    ("stm-tiny", "STM on resnet18, key 64 / value 128 (CPU)", (TINY, STM)),
    ("scm-tiny-head", "SCM rung 2, tiny: + ASPP, refine, CE+IoU (CPU)", (TINY, SCM_HEAD)),
    ("scm-tiny", "SCM, tiny: spatial prior, ASPP, refine, CE+IoU (CPU)", (TINY, SCM)),
    ("dstm-tiny-lovasz", "D-STM rung 2, tiny: + Lovász (CPU)", (TINY, DSTM_LOVASZ)),
    ("dstm-tiny-depth", "D-STM rung 3, tiny: + depth (CPU)", (TINY, DSTM_DEPTH)),
    ("dstm-tiny", "D-STM, tiny: depth, ASPP, CE+Lovász (CPU)", (TINY, DSTM)),
]


def _preset(name: str, parts: tuple[dict[str, Any], ...]) -> Callable[..., ModelConfig]:
    def build(**overrides: Any) -> ModelConfig:
        cfg = ModelConfig(name=name)
        for part in parts:
            cfg = cfg.replace(**part)
        return cfg.replace(**overrides)

    build.__name__ = name.replace("-", "_")
    return build


for _name, _description, _parts in PRESETS:
    register_preset(_name, _description)(_preset(_name, _parts))
