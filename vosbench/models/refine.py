"""BASNet-style refine module (SCM §2.2).

Input: the per-object coarse foreground probability before soft aggregation (full resolution), and
optionally the normalised image for boundary cues. An encoder re-downsamples it with stride-2 3×3
conv + ReLU stages, a decoder upsamples back to full resolution with skip concatenation, and the
output is a residual added to the coarse logit; the refined per-object maps are merged by soft
aggregation again. The image's share of the first conv is computed once per frame (the conv is
linear, so conv([p, image]) = conv_p(p) + conv_image(image)).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RefineModule(nn.Module):
    """coarse logit B*K,1,H,W (+ image B,3,H,W) -> refined logit B*K,1,H,W."""

    def __init__(self, channels: int = 32, levels: int = 3, use_image: bool = True):
        super().__init__()
        self.inc_mask = nn.Conv2d(1, channels, 3, padding=1)
        self.inc_image = nn.Conv2d(3, channels, 3, padding=1, bias=False) if use_image else None
        self.down = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.ReLU(inplace=True))
            for _ in range(levels)
        )
        self.up = nn.ModuleList(
            nn.Sequential(nn.Conv2d(2 * channels, channels, 3, padding=1), nn.ReLU(inplace=True))
            for _ in range(levels)
        )
        self.out = nn.Conv2d(channels, 1, 3, padding=1)

    def forward(
        self, coarse_logit: torch.Tensor, image: torch.Tensor | None, num_objects: int
    ) -> torch.Tensor:
        x = self.inc_mask(torch.sigmoid(coarse_logit))
        if self.inc_image is not None and image is not None:
            x = x + self.inc_image(image.to(x.dtype)).repeat_interleave(num_objects, dim=0)
        x = F.relu(x)
        feats = [x]
        for down in self.down:
            x = down(x)
            feats.append(x)
        for up, skip in zip(self.up, reversed(feats[:-1]), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = up(torch.cat([x, skip], dim=1))
        return coarse_logit + self.out(x)
