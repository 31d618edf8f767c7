"""A tiny stand-in VOS model implementing docs/model-api.md, for engine tests only.

Deterministic, a few convolutions, stride 16; it records the memory sizes it is asked to read so
tests can check the schedule. Not a library component.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Query:
    key: torch.Tensor
    value: torch.Tensor
    skips: tuple
    image_size: tuple[int, int]


@dataclass
class Memory:
    key: torch.Tensor
    value: torch.Tensor


@dataclass
class Output:
    logits: torch.Tensor
    probs: torch.Tensor
    aux: dict = field(default_factory=dict)


class StandInModel(nn.Module):
    def __init__(self, spatial_prior: bool = False, depth: bool = False, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        cin = 4 if depth else 3
        self.config = SimpleNamespace(spatial_prior=spatial_prior, depth=depth, name="standin")
        self.qenc = nn.Conv2d(cin, 8, 3, padding=1)
        self.menc = nn.Conv2d(cin + 2, 8, 3, padding=1)
        self.key = nn.Conv2d(8, 4, 1)
        self.value = nn.Conv2d(8, 6, 1)
        self.dec = nn.Conv2d(6 + 6 + (1 if spatial_prior else 0), 1, 3, padding=1)
        self.read_sizes: list[int] = []  # T of every segment call
        self.memory_calls: list[int] = []  # K of every encode_memory call

    def _inp(self, image, depth):
        if self.config.depth:
            assert depth is not None, "depth model needs depth"
            image = torch.cat([image, depth], 1)
        return image

    def encode_query(self, image, depth=None):
        f = F.avg_pool2d(torch.relu(self.qenc(self._inp(image, depth))), 16)
        return Query(self.key(f), self.value(f), (), tuple(image.shape[-2:]))

    def encode_memory(self, image, masks, depth=None, query=None):
        b, k = masks.shape[:2]
        self.memory_calls.append(k)
        others = masks.sum(1, keepdim=True) - masks  # B,K,H,W
        x = self._inp(image, depth)
        x = x[:, None].expand(b, k, *x.shape[1:])
        x = torch.cat([x, masks[:, :, None], others[:, :, None]], 2).flatten(0, 1)
        f = F.avg_pool2d(torch.relu(self.menc(x)), 16)
        key = self.key(f).view(b, k, -1, *f.shape[-2:])
        value = self.value(f).view(b, k, -1, *f.shape[-2:])
        return Memory(key, value)

    def segment(self, query, memory_key, memory_value, prev_mask=None, valid=None):
        b, k, ck, t, h, w = memory_key.shape
        self.read_sizes.append(t)
        mk = memory_key.reshape(b * k, ck, t * h * w)
        mv = memory_value.reshape(b * k, -1, t * h * w)
        qk = query.key.repeat_interleave(k, 0).flatten(2)  # BK,Ck,hw
        aff = torch.softmax(mk.transpose(1, 2) @ qk / ck**0.5, dim=1)  # BK,THW,hw
        read = (mv @ aff).view(b * k, -1, h, w)
        feat = torch.cat([read, query.value.repeat_interleave(k, 0)], 1)
        feat = F.interpolate(feat, size=query.image_size, mode="bilinear", align_corners=False)
        if self.config.spatial_prior:
            assert prev_mask is not None and prev_mask.shape[1] == k
            feat = torch.cat([feat, prev_mask.reshape(b * k, 1, *prev_mask.shape[-2:])], 1)
        fg = torch.sigmoid(self.dec(feat)).view(b, k, *query.image_size)
        bg = torch.prod(1 - fg, 1, keepdim=True)
        p = torch.cat([bg, fg], 1).clamp(1e-7, 1 - 1e-7)
        logits = torch.log(p / (1 - p))
        return Output(logits, torch.softmax(logits, 1))
