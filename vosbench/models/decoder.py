"""STM refinement decoder: context feature at stride 16 -> refine with stride-8 and stride-4 skips.

Skip features come from the query encoder and are the same for every object, so their projection
(``convFS`` + residual block in STM) runs once per frame and is broadcast over objects.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ResBlock(nn.Module):
    """Pre-activation residual block (ReLU-conv-ReLU-conv), STM's ``ResBlock``."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.conv1(F.relu(x))
        r = self.conv2(F.relu(r))
        return x + r


class SkipRefine(nn.Module):
    """STM ``Refine``: project the skip, add the upsampled coarser map, residual block."""

    def __init__(self, skip_channels: int, channels: int):
        super().__init__()
        self.skip_conv = nn.Conv2d(skip_channels, channels, 3, padding=1)
        self.skip_res = ResBlock(channels)
        self.merge_res = ResBlock(channels)

    def project_skip(self, skip: torch.Tensor) -> torch.Tensor:
        return self.skip_res(self.skip_conv(skip))

    def forward(self, skip: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(coarse, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.merge_res(skip + up)


class Decoder(nn.Module):
    """x B*K,C,h,w (after ASPP/context conv) + shared skips (B-sized) -> per-object logit B*K,1,4h,4w."""

    def __init__(self, channels: int, skip_channels: tuple[int, int]):
        super().__init__()
        self.res = ResBlock(channels)
        self.refine8 = SkipRefine(skip_channels[0], channels)
        self.refine4 = SkipRefine(skip_channels[1], channels)
        self.pred = nn.Conv2d(channels, 1, 3, padding=1)

    def forward(
        self, x: torch.Tensor, skips: tuple[torch.Tensor, torch.Tensor], num_objects: int
    ) -> torch.Tensor:
        s8 = self.refine8.project_skip(skips[0]).repeat_interleave(num_objects, dim=0).to(x.dtype)
        s4 = self.refine4.project_skip(skips[1]).repeat_interleave(num_objects, dim=0).to(x.dtype)
        m = self.res(x)
        m = self.refine8(s8, m)
        m = self.refine4(s4, m)
        return self.pred(F.relu(m))  # stride 4
