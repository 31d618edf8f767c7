"""The batched Lovász-softmax and the sync-free loss values equal the per-image, per-class loop
they replaced (kept here verbatim as the reference, on fixed random inputs)."""

from __future__ import annotations

import pytest
import torch

from vosbench.losses import lovasz_softmax, segmentation_loss
from vosbench.models.config import LossConfig
from vosbench.models.outputs import SegmentationOutput


def _ref_increments(gt_sorted: torch.Tensor) -> torch.Tensor:
    gt = gt_sorted.double()
    total = gt.sum()
    jaccard = 1.0 - (total - gt.cumsum(0)) / (total + (1 - gt).cumsum(0))
    if gt.numel() > 1:
        jaccard = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])
    return jaccard


def _ref_lovasz(probs, target, classes=None, ignore_index=255):
    """The loop implementation before the change (one sort and two host reads per image and class)."""
    losses = []
    for b in range(probs.shape[0]):
        p = probs[b].flatten(1)
        t = target[b].flatten()
        keep = t != ignore_index
        p, t = p[:, keep], t[keep]
        per_class = []
        for c in range(p.shape[0]):
            if classes is not None and not bool(classes[b, c]):
                continue
            fg = t == c
            if not bool(fg.any()):
                continue
            errors = (fg.float() - p[c]).abs()
            errors_sorted, order = torch.sort(errors, descending=True)
            per_class.append(torch.dot(errors_sorted, _ref_increments(fg[order]).to(errors_sorted.dtype)))
        if per_class:
            losses.append(torch.stack(per_class).mean())
    if not losses:
        return probs.sum() * 0.0
    return torch.stack(losses).mean()


def _inputs(seed: int, b: int = 3, c: int = 4, h: int = 9, w: int = 11):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(b, c, h, w, generator=g, dtype=torch.float64)
    target = torch.randint(0, c - 1, (b, h, w), generator=g)  # class c-1 is absent everywhere
    target[torch.rand(b, h, w, generator=g) < 0.15] = 255  # ignored pixels
    target[1, :, :] = torch.where(target[1] == 255, 255, 0)  # image 1: background only
    classes = torch.rand(b, c, generator=g) < 0.7
    classes[:, 0] = True
    return logits, target, classes


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("with_classes", [False, True])
def test_batched_lovasz_equals_the_loop(seed: int, with_classes: bool) -> None:
    logits, target, classes = _inputs(seed)
    cls = classes if with_classes else None
    a = logits.clone().requires_grad_(True)
    ours = lovasz_softmax(torch.softmax(a, 1), target, cls)
    ours.backward()
    r = logits.clone().requires_grad_(True)
    ref = _ref_lovasz(torch.softmax(r, 1), target, cls)
    ref.backward()
    assert float(ours.detach()) == pytest.approx(float(ref.detach()), rel=1e-9, abs=1e-12)
    assert torch.allclose(a.grad, r.grad, rtol=1e-7, atol=1e-10)


def test_batched_lovasz_with_nothing_present_is_zero_with_a_gradient_path() -> None:
    probs = torch.softmax(torch.randn(2, 3, 4, 4, dtype=torch.float64), 1).requires_grad_(True)
    target = torch.full((2, 4, 4), 255)
    out = lovasz_softmax(probs, target)
    assert float(out.detach()) == 0.0 and float(_ref_lovasz(probs, target).detach()) == 0.0
    out.backward()
    assert probs.grad is not None


def test_as_tensors_values_match_the_float_values() -> None:
    logits, target, _ = _inputs(0, b=2, c=3)
    target[target == 255] = 0
    out = SegmentationOutput(logits=logits.float(), probs=torch.softmax(logits.float(), 1))
    cfg = LossConfig(ce=1.0, iou=0.5, lovasz=2.0)
    total_f, floats = segmentation_loss(out, target, cfg)
    total_t, tensors = segmentation_loss(out, target, cfg, as_tensors=True)
    assert set(floats) == set(tensors) == {"ce", "iou", "lovasz", "total"}
    assert all(isinstance(v, torch.Tensor) and v.dim() == 0 and not v.requires_grad for v in tensors.values())
    assert {k: float(v) for k, v in tensors.items()} == floats
    assert torch.equal(total_f, total_t)


def test_training_loss_reads_nothing_back_from_the_device() -> None:
    """On the meta device any host read (``bool``, ``float``, ``int`` of a tensor) raises, like a
    GPU->CPU synchronisation would stall: the loss with ``as_tensors`` must make none."""
    b, k, h, w = 2, 2, 8, 8
    logits = torch.empty(b, k + 1, h, w, device="meta", requires_grad=True)
    out = SegmentationOutput(logits=logits, probs=logits.softmax(1),
                             aux={"coarse_logits": logits * 2, "refine_logits": logits * 3})
    target = torch.empty(b, h, w, dtype=torch.long, device="meta")
    valid = torch.empty(b, k, dtype=torch.bool, device="meta")
    cfg = LossConfig(ce=1.0, coarse_ce=0.5, iou=0.5, lovasz=1.0)
    total, values = segmentation_loss(out, target, cfg, valid=valid, as_tensors=True)
    assert total.device.type == "meta" and set(values) == {"ce", "coarse_ce", "iou", "lovasz", "total"}
