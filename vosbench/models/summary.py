"""Preset summaries for listings (``vosbench models``): parts, loss mix and parameter counts.

Parameter counts come from building each model on the ``meta`` device (no memory, no init cost).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vosbench.models.config import ModelConfig
from vosbench.models.network import VOSModel
from vosbench.models.registry import get_preset, list_presets, preset_info


@dataclass(frozen=True)
class PresetSummary:
    name: str
    description: str
    backbone: str
    key_dim: int
    value_dim: int
    parts: tuple[str, ...]
    losses: tuple[str, ...]
    parameters: int

    @property
    def parts_text(self) -> str:
        short = {"spatial_prior": "spatial"}
        return "+".join(short.get(p, p) for p in self.parts) if self.parts else "-"


def count_parameters(config: ModelConfig) -> int:
    """Parameters of the model ``config`` builds (frozen BN statistics are buffers, not counted)."""
    with torch.device("meta"):
        model = VOSModel(config.replace(backbone_weights=None))
    return model.num_parameters()


def summarize(name: str) -> PresetSummary:
    cfg = get_preset(name)
    total = count_parameters(cfg)
    loss = cfg.loss
    losses = tuple(n for n in ("ce", "iou", "lovasz") if getattr(loss, n) > 0)
    return PresetSummary(
        name=name,
        description=preset_info(name).description,
        backbone=cfg.backbone,
        key_dim=cfg.key_dim,
        value_dim=cfg.value_dim,
        parts=tuple(cfg.enabled_parts()),
        losses=losses,
        parameters=total,
    )


def summarize_presets(names: list[str] | None = None) -> list[PresetSummary]:
    """Summaries of ``names`` (default: every registered preset); unknown names raise ConfigError."""
    return [summarize(n) for n in (names or list_presets())]
