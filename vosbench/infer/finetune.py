"""Online finetuning (SCM §3.3): adapt a copy of the model to one video before propagating it.

Each step builds a pseudo clip from the first frame and its mask (the frame itself, then random
affine deformations with colour jitter, :func:`vosbench.data.augment.pseudo_clip`) and trains
like STM's main stage on it: memory from the earlier clip frames with their masks, a prediction
for each later frame, the model's own loss mix. Batch size 1: every BatchNorm stays in eval mode
(running statistics, never updated), whatever the checkpoint's ``freeze_bn``.
The source model is deep-copied first, so its weights are untouched for the next video.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vosbench.data.augment import AugFrame, DeformParams, color_jitter, pseudo_clip, with_image
from vosbench.data.imageio import VOID_ID
from vosbench.errors import ConfigError, NumericalError
from vosbench.infer.engine import model_device, model_flags
from vosbench.losses import segmentation_loss
from vosbench.models import MemoryEncoding
from vosbench.precision import check_precision, resolve_numerics
from vosbench.progress import Progress, ensure_progress

if TYPE_CHECKING:
    from vosbench.precision import Numerics


@dataclass(frozen=True)
class FinetuneConfig:
    """Steps, optimiser and augmentation of online finetuning (``steps == 0`` switches it off)."""

    steps: int = 0
    lr: float = 1e-5
    clip_length: int = 3  # the first frame + 2 pseudo-frames, like STM's 3-frame training clips
    deform: DeformParams = field(default_factory=lambda: DeformParams(rotate=10.0, scale=(0.9, 1.1), shear=5.0, translate=0.05))
    color: float = 0.1  # brightness/contrast/saturation jitter of the pseudo-frames
    seed: int = 0
    precision: str = "auto"  # vosbench.precision, resolved for training on the model's device
    # resolved once at the run's edge for training (purpose "train": bf16 where the GPU has it,
    # whatever inference runs); None: resolve ``precision`` on the model's device
    numerics: Numerics | None = field(default=None, compare=False)

    def validate(self) -> FinetuneConfig:
        if self.steps < 0:
            raise ConfigError(f"finetune steps must be >= 0, got {self.steps}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"finetune learning rate must be > 0 and finite (--finetune-lr), got {self.lr}")
        if self.clip_length < 2:
            raise ConfigError(f"finetune clip length must be >= 2, got {self.clip_length}")
        check_precision(self.precision)
        return self


def _tensors(frame: AugFrame, object_ids: Sequence[int], device: torch.device):
    """(image 1,3,H,W, one-hot masks 1,K,H,W, target 1,H,W, depth 1,1,H,W | None)."""
    image = torch.from_numpy(np.array(frame.image)).to(device).permute(2, 0, 1)[None].float() / 255
    ids = torch.from_numpy(frame.mask.astype(np.int64)).to(device)
    target = torch.zeros_like(ids)
    for k, obj in enumerate(object_ids, start=1):
        target[ids == obj] = k
    target[ids == VOID_ID] = VOID_ID
    onehot = F.one_hot(target.clamp_max(len(object_ids)) * (target != VOID_ID), len(object_ids) + 1)
    masks = onehot.permute(2, 0, 1)[None, 1:].float()
    depth = None
    if frame.depth is not None:
        depth = torch.from_numpy(np.array(frame.depth)).to(device)[None, None].float()
    return image, masks, target[None], depth


def keep_bn_statistics(model: nn.Module) -> None:
    """Put every BatchNorm of ``model`` in eval mode: with a batch of one pseudo clip, train-mode BN
    would normalise with (and store) that one image's statistics. ``freeze_bn=True`` encoders do
    this already; checkpoints trained with ``freeze_bn=False`` need it here."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


# fp16 gradient scaling: a step whose scaled gradients overflow is redone at half the scale (not
# skipped, as a training loop's GradScaler would: a finetuning of a few dozen steps cannot lose
# its first ones); the scale starts where small networks' gradients fit, not at PyTorch's 2**16.
FINETUNE_INIT_SCALE = 2.0**12
MAX_SCALE_RETRIES = 24


def finetune_scaler(numerics: Numerics) -> torch.amp.GradScaler:
    """The loss scaler of online finetuning (enabled for fp16 only: bf16 and fp32 need none)."""
    return torch.amp.GradScaler(numerics.device.type, init_scale=FINETUNE_INIT_SCALE,
                                enabled=numerics.needs_grad_scaler)


def step_without_skipping(scaler: torch.amp.GradScaler, optimizer: torch.optim.Optimizer,
                          loss: Callable[[], torch.Tensor], precision: str = "fp16") -> int:
    """One optimiser step on ``loss()``, redone at half the loss scale while the scaled gradients
    overflow (a GradScaler alone skips such a step); returns the number of tries."""
    for tries in range(1, MAX_SCALE_RETRIES + 2):
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss()).backward()
        before = scaler.get_scale() if scaler.is_enabled() else None
        scaler.step(optimizer)
        scaler.update()
        if before is None or scaler.get_scale() >= before:  # no overflow: the step was taken
            return tries
    raise NumericalError(
        f"online finetuning: the gradients stayed non-finite at every loss scale down to "
        f"{scaler.get_scale():g} ({precision}); try --precision fp32"
    )


def finetune_model(
    model: nn.Module,
    image: np.ndarray,
    mask: np.ndarray,
    object_ids: Sequence[int],
    config: FinetuneConfig,
    depth: np.ndarray | None = None,
    progress: Progress | None = None,
) -> nn.Module:
    """A fine-tuned deep copy of ``model`` (eval mode); ``model`` itself is not modified.

    ``image`` H,W,3 uint8, ``mask`` H,W ids, ``object_ids`` the ids to learn (channel order),
    ``depth`` H,W in [0,1] for depth models.
    """
    config.validate()
    tuned = copy.deepcopy(model)
    if config.steps == 0 or not object_ids:
        return tuned.eval()
    spatial_prior, needs_depth = model_flags(model)
    if needs_depth and depth is None:
        raise ConfigError("online finetuning of a depth model needs the first frame's depth")
    device = model_device(model)
    numerics = config.numerics or resolve_numerics(device, config.precision, "train")
    scaler = finetune_scaler(numerics)
    loss_cfg = model.config.loss
    params = [p for p in tuned.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.lr)
    rng = np.random.default_rng(config.seed)
    source = AugFrame(image, mask, depth if needs_depth else None)
    progress = ensure_progress(progress)
    tuned.train()
    keep_bn_statistics(tuned)
    with torch.enable_grad():
        for _ in range(config.steps):
            clip = pseudo_clip(rng, source, config.clip_length, config.deform)
            if config.color:
                c = config.color
                clip = [clip[0]] + [
                    with_image(f, color_jitter(f.image, rng, brightness=c, contrast=c, saturation=c)) for f in clip[1:]
                ]
            frames = [_tensors(f, object_ids, device) for f in clip]

            def clip_loss() -> torch.Tensor:
                memory: list[MemoryEncoding] = []
                total = torch.zeros((), device=device)
                with numerics.autocast():
                    for t in range(1, len(frames)):
                        img, masks, _, dep = frames[t - 1]
                        memory.append(tuned.encode_memory(img, masks, depth=dep))
                        key, value = MemoryEncoding.stack(memory)
                        img, _, target, dep = frames[t]
                        query = tuned.encode_query(img, depth=dep)
                        prior = frames[t - 1][1] if spatial_prior else None
                        out = tuned.segment(query, key, value, prev_mask=prior)
                        loss, _ = segmentation_loss(out, target, loss_cfg)  # float32 (the losses cast)
                        total = total + loss
                return total / (len(frames) - 1)

            step_without_skipping(scaler, optimizer, clip_loss, numerics.precision)
            progress.advance(1)
    for p in tuned.parameters():
        p.grad = None
    return tuned.eval()
