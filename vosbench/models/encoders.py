"""Query and memory encoders (STM §3.1): a backbone trunk plus key/value projections at stride 16."""

from __future__ import annotations

import torch
from torch import nn

from vosbench.models.backbone import Backbone


class KeyValue(nn.Module):
    """STM's key/value embedding: two parallel 3×3 convs on the stride-16 feature."""

    def __init__(self, in_channels: int, key_dim: int, value_dim: int):
        super().__init__()
        self.key = nn.Conv2d(in_channels, key_dim, 3, padding=1)
        self.value = nn.Conv2d(in_channels, value_dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.key(x), self.value(x)


class QueryEncoder(nn.Module):
    """RGB (+ depth) -> key, value at stride 16 and the stride-8/stride-4 skip features."""

    def __init__(self, backbone: Backbone, key_dim: int, value_dim: int):
        super().__init__()
        self.backbone = backbone
        self.key_value = KeyValue(backbone.channels[2], key_dim, value_dim)

    @property
    def skip_channels(self) -> tuple[int, int]:
        """Channels of the (stride-8, stride-4) skips."""
        return self.backbone.channels[1], self.backbone.channels[0]

    def forward(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        r2, r3, r4 = self.backbone(x)  # strides 4, 8, 16
        key, value = self.key_value(r4)
        return key, value, (r3, r2)


class MemoryEncoder(nn.Module):
    """RGB (+ depth) + own mask + other-objects mask -> key, value at stride 16."""

    def __init__(self, backbone: Backbone, key_dim: int, value_dim: int):
        super().__init__()
        self.backbone = backbone
        self.key_value = KeyValue(backbone.channels[2], key_dim, value_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r4 = self.backbone(x)[2]
        return self.key_value(r4)
