"""Test-time augmentation: horizontal flip and multi-scale testing (SCM §3.3, D-STM Table 2).

Each variant (scale, flip) runs its own :class:`~vosbench.infer.engine.InferenceCore` with its
own memory on the transformed video; the probabilities are mapped back to the original
resolution (bilinear, un-flipped) and averaged. On a frame with a given mask, the given objects'
average is replaced by the mask itself at the original resolution (the resampled variants blur
it). The single variant (1.0, no flip) is passed through untouched, so it equals plain inference
exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vosbench.errors import ConfigError
from vosbench.infer.engine import (
    EngineConfig,
    InferenceCore,
    mask_to_tensor,
    new_core,
    object_ids_in,
    paste_ground_truth,
)


@dataclass(frozen=True)
class TTAConfig:
    """Which variants to run: every scale, each with and without a horizontal flip if ``flip``."""

    flip: bool = False
    scales: tuple[float, ...] = (1.0,)

    def validate(self) -> TTAConfig:
        if not self.scales:
            raise ConfigError("scales must list at least one scale")
        for s in self.scales:
            if not (0.1 <= float(s) <= 4.0):
                raise ConfigError(f"scale {s} out of range [0.1, 4]")
        return self

    def variants(self) -> list[tuple[float, bool]]:
        flips = (False, True) if self.flip else (False,)
        return [(float(s), f) for s in self.scales for f in flips]


def parse_scales(text: str) -> tuple[float, ...]:
    """``"0.75,1.0,1.25"`` -> ``(0.75, 1.0, 1.25)``; a clear error on anything else."""
    try:
        scales = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"--scales must be comma-separated numbers, got {text!r}") from None
    if not scales:
        raise ConfigError("--scales must list at least one scale")
    return scales


def _resize(x: Tensor, size: tuple[int, int], mode: str) -> Tensor:
    """Resize a ``C,H,W`` (or ``H,W`` for nearest) tensor to ``size``."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if mode == "nearest":
        return F.interpolate(x[None, None].float(), size=size, mode="nearest-exact")[0, 0].to(x.dtype)
    down = size[0] < x.shape[-2]
    return F.interpolate(x[None], size=size, mode="bilinear", align_corners=False, antialias=down)[0]


class TTAVariant:
    """One (scale, flip) transform of a video with its own engine."""

    def __init__(self, model: nn.Module, config: EngineConfig, scale: float, flip: bool, frames: int | None = None):
        self.scale, self.flip = scale, flip
        self.core = new_core(model, config, frames)

    @property
    def identity(self) -> bool:
        return self.scale == 1.0 and not self.flip

    def _size(self, h: int, w: int) -> tuple[int, int]:
        return max(16, round(h * self.scale)), max(16, round(w * self.scale))

    def step(self, image: Tensor, mask: Tensor | None, objects: Sequence[int] | None, depth: Tensor | None) -> Tensor:
        if self.identity:
            return self.core.step(image, mask, objects, depth)
        h, w = image.shape[-2:]
        size = self._size(h, w)
        image = _resize(image, size, "bilinear")
        mask = None if mask is None else _resize(mask, size, "nearest")
        depth = None if depth is None else _resize(depth.reshape(1, h, w), size, "bilinear")
        if self.flip:
            image = image.flip(-1)
            mask = None if mask is None else mask.flip(-1)
            depth = None if depth is None else depth.flip(-1)
        probs = self.core.step(image, mask, objects, depth)
        if self.flip:
            probs = probs.flip(-1)
        return _resize(probs, (h, w), "bilinear")


class TTAInference:
    """Runs every TTA variant of one model on a video and averages their probabilities."""

    def __init__(self, model: nn.Module, config: EngineConfig | None = None, tta: TTAConfig | None = None,
                 frames: int | None = None):
        tta = (tta or TTAConfig()).validate()
        config = config or EngineConfig()
        self.variants = [TTAVariant(model, config, s, f, frames) for s, f in tta.variants()]

    @property
    def object_ids(self) -> list[int]:
        return self.variants[0].core.object_ids

    @property
    def cores(self) -> list[InferenceCore]:
        return [v.core for v in self.variants]

    def reset(self) -> None:
        for v in self.variants:
            v.core.reset()

    @torch.inference_mode()
    def step(
        self,
        image: Tensor,
        mask: np.ndarray | Tensor | None = None,
        objects: Sequence[int] | None = None,
        depth: Tensor | None = None,
    ) -> Tensor:
        """Same contract as :meth:`InferenceCore.step`."""
        core = self.variants[0].core
        if mask is not None:
            mask = mask_to_tensor(mask, core.device)
            if objects is None:
                objects = object_ids_in(mask)
        if len(self.variants) == 1 and self.variants[0].identity:
            return self.variants[0].step(image, mask, objects, depth)
        total = None
        for v in self.variants:
            p = v.step(image, mask, objects, depth)
            total = p.clone() if total is None else total.add_(p)
        total.div_(len(self.variants))
        if mask is not None and objects:
            total = paste_ground_truth(total[None], mask, objects, self.object_ids)[0]
        return total
