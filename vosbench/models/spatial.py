"""SCM spatial constraint module (SCM §2.1).

The previous frame's mask of an object (H×W) is concatenated with the object's current embedding
(the memory read-out [v_Q, read], C channels at stride 16), a 3×3 conv + sigmoid turns the C+1
channels into a spatial prior map (H×W), and the prior multiplies the embedding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SpatialPrior(nn.Module):
    """embedding B,C,h,w and prev mask B,1,H,W -> (embedding * prior, prior B,1,h,w)."""

    def __init__(self, channels: int, kernel_size: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(channels + 1, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, embedding: torch.Tensor, prev_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = F.interpolate(prev_mask.to(embedding.dtype), size=embedding.shape[-2:], mode="area")
        prior = torch.sigmoid(self.conv(torch.cat([embedding, mask], dim=1)))
        return embedding * prior, prior
