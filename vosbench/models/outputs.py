"""Typed containers passed between the three model calls (encode_query, encode_memory, segment)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch


@dataclass
class QueryEncoding:
    """One frame's query encoding, shared by every object.

    ``key`` B,Ck,h,w; ``value`` B,Cv,h,w; ``skips`` (stride-8, stride-4) features; ``image_size``
    the caller's (H, W) before padding; ``image`` the normalised, padded image B,3,Hp,Wp
    (used by the refine module).
    """

    key: torch.Tensor
    value: torch.Tensor
    skips: tuple[torch.Tensor, torch.Tensor]
    image_size: tuple[int, int]
    image: torch.Tensor | None = None


@dataclass
class MemoryEncoding:
    """One memory frame: ``key`` B,K,Ck,h,w and ``value`` B,K,Cv,h,w."""

    key: torch.Tensor
    value: torch.Tensor

    @staticmethod
    def stack(encodings: Sequence[MemoryEncoding]) -> tuple[torch.Tensor, torch.Tensor]:
        """Stack T memory frames on dim 3 -> (B,K,Ck,T,h,w, B,K,Cv,T,h,w) as ``segment`` wants."""
        if not encodings:
            raise ValueError("need at least one memory frame")
        key = torch.stack([e.key for e in encodings], dim=3)
        value = torch.stack([e.value for e in encodings], dim=3)
        return key, value


@dataclass
class SegmentationOutput:
    """``logits``/``probs`` B,K+1,H,W (channel 0 = background); ``aux`` extra B,K+1,H,W maps."""

    logits: torch.Tensor
    probs: torch.Tensor
    aux: dict[str, torch.Tensor] = field(default_factory=dict)
