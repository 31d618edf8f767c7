"""Atrous spatial pyramid pooling after the memory read (SCM §2.2, D-STM §2.2, DeepLab).

Branches: one 1×1 conv, three 3×3 convs dilated by ``rates`` (the SCM paper uses 2, 4, 8 because the
read-out is at stride 16 and small: DeepLab's 6/12/18 would mostly sample padding), and an image-pool
branch (global average → 1×1 conv, broadcast back). The concatenation is projected by a 1×1 conv.
There is no BatchNorm: the STM decoder it feeds has none, and an image-pool BN fails on a 1×1 map
with batch size 1 in train mode (online finetuning).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class ASPP(nn.Module):
    """``in_channels`` -> ``out_channels`` with 1×1, dilated 3×3 (``rates``) and image-pool branches."""

    def __init__(
        self, in_channels: int, out_channels: int, rates: Sequence[int] = (2, 4, 8), image_pool: bool = True
    ):
        super().__init__()
        branches = [nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.ReLU(inplace=True))]
        for rate in rates:
            branches.append(
                nn.Sequential(
                    nn.Conv2d(in_channels, out_channels, 3, padding=rate, dilation=rate),
                    nn.ReLU(inplace=True),
                )
            )
        self.branches = nn.ModuleList(branches)
        self.pool = (
            nn.Sequential(
                nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, out_channels, 1), nn.ReLU(inplace=True)
            )
            if image_pool
            else None
        )
        n = len(branches) + (1 if image_pool else 0)
        self.project = nn.Sequential(nn.Conv2d(n * out_channels, out_channels, 1), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [branch(x) for branch in self.branches]
        if self.pool is not None:
            outs.append(self.pool(x).expand(-1, -1, x.shape[2], x.shape[3]))
        return self.project(torch.cat(outs, dim=1))
