"""The clip forward: what goes into memory and into the spatial prior (SCM training strategy)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from vosbench.models import LossConfig, MemoryEncoding, QueryEncoding, SegmentationOutput
from vosbench.train.loop import clip_forward


@dataclass
class _Cfg:
    spatial_prior: bool = True
    loss: LossConfig = field(default_factory=LossConfig)


class _Recorder(torch.nn.Module):
    """Stands in for a VOSModel; predicts a fixed per-frame probability and records its inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.memory_masks: list[torch.Tensor] = []
        self.priors: list[torch.Tensor | None] = []
        self.memory_sizes: list[int] = []

    def encode_query(self, image, depth=None):
        _b, _, h, w = image.shape
        return QueryEncoding(key=image[:, :1], value=image[:, :1], skips=(image, image), image_size=(h, w))

    def encode_memory(self, image, masks, depth=None, query=None):
        self.memory_masks.append(masks.detach().clone())
        _b, _k, _h, _w = masks.shape
        return MemoryEncoding(key=masks.unsqueeze(2), value=masks.unsqueeze(2))

    def segment(self, query, memory_key, memory_value, prev_mask=None, valid=None):
        self.priors.append(None if prev_mask is None else prev_mask.detach().clone())
        self.memory_sizes.append(memory_key.shape[3])
        b, k = memory_key.shape[:2]
        h, w = query.image_size
        logits = torch.zeros(b, k + 1, h, w) + self.w
        logits[:, 1] += 2.0  # object 1 predicted everywhere with p > 0.5
        return SegmentationOutput(logits=logits, probs=torch.softmax(logits, 1))


def _batch() -> dict[str, torch.Tensor]:
    t, k, h, w = 3, 2, 4, 5
    target = torch.zeros(1, t, h, w, dtype=torch.long)
    target[0, 0, :2] = 1
    target[0, 1, 2:] = 2
    target[0, 2, :, :2] = 1
    masks = (target.unsqueeze(2) == torch.arange(1, k + 1).view(1, 1, k, 1, 1)).float()
    return {"images": torch.rand(1, t, 3, h, w), "masks": masks, "target": target,
            "valid": torch.ones(1, k, dtype=torch.bool)}


def test_memory_holds_gt_then_prediction_and_prior_uses_gt() -> None:
    net, batch = _Recorder(), _batch()
    loss, parts = clip_forward(net, batch, _Cfg(), own_prior=False)
    assert loss.requires_grad and "ce" in parts
    # frame 0 enters memory with its ground truth, frame 1 with the predicted soft mask
    assert torch.equal(net.memory_masks[0], batch["masks"][:, 0])
    assert not torch.equal(net.memory_masks[1], batch["masks"][:, 1])
    assert (net.memory_masks[1][:, 0] > 0.5).all()
    assert net.memory_sizes == [1, 2]
    # prior: ground truth of the previous frame (frames 0 and 1)
    assert torch.equal(net.priors[0], batch["masks"][:, 0])
    assert torch.equal(net.priors[1], batch["masks"][:, 1])


def test_prior_switches_to_own_prediction() -> None:
    net, batch = _Recorder(), _batch()
    clip_forward(net, batch, _Cfg(), own_prior=True)
    assert torch.equal(net.priors[0], batch["masks"][:, 0])  # the reference frame's mask is given
    # frame 1's prediction (object 1 everywhere), as the 0-1 mask inference gives, not the soft probs
    assert torch.equal(net.priors[1][:, 0], torch.ones(1, 4, 5)) and not net.priors[1][:, 1].any()
    assert torch.equal(net.priors[1], (net.memory_masks[1] > 0.5).float())
    assert not torch.equal(net.priors[1], net.memory_masks[1])
    assert not torch.equal(net.priors[1], batch["masks"][:, 1])


def test_no_prior_without_spatial_module() -> None:
    net = _Recorder()
    clip_forward(net, _batch(), _Cfg(spatial_prior=False))
    assert net.priors == [None, None]


def test_ground_truth_prior_comes_from_the_samples_prior_masks() -> None:
    """SCM §2.3: a sample's ``prior`` (the video frame before each target) feeds the spatial prior, not
    the previous sampled frame's mask; in the final phase the own prediction replaces it."""
    net, batch = _Recorder(), _batch()
    batch["prior"] = torch.rand(1, 3, 2, 4, 5).round()
    clip_forward(net, batch, _Cfg(), own_prior=False)
    assert torch.equal(net.priors[0], batch["prior"][:, 1]) and torch.equal(net.priors[1], batch["prior"][:, 2])
    net = _Recorder()
    clip_forward(net, batch, _Cfg(), own_prior=True)
    assert torch.equal(net.priors[0], batch["masks"][:, 0])
    assert not torch.equal(net.priors[1], batch["prior"][:, 2])
