"""Segmentation losses: cross-entropy, soft IoU (SCM refine output), Lovász-softmax (D-STM).

Lovász-softmax follows Berman, Rannen Triki & Blaschko (CVPR 2018): for each class c the vector of
pixel errors m_i = |[y_i = c] − p_i(c)| is sorted in decreasing order and dotted with the
increments of the Jaccard loss Δ_J over the growing sets of those pixels — the Lovász extension of
Δ_J, a tight convex surrogate of 1 − IoU.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from vosbench.models.config import LossConfig
from vosbench.models.outputs import SegmentationOutput


def jaccard_increments(gt_sorted: torch.Tensor) -> torch.Tensor:
    """g_i = Δ_J({π_1..π_i}) − Δ_J({π_1..π_{i−1}}) for a 0/1 ground truth sorted by decreasing error.

    Taking the first i pixels as mispredicted: |M| = i and |{y=c} ∪ M| = |{y=c}| + #(non-c among
    the first i), so Δ_J = 1 − (|{y=c}| − #(c among the first i)) / (|{y=c}| + #(non-c among the first i)).
    """
    gt = gt_sorted.double()
    total = gt.sum()
    intersection = total - gt.cumsum(0)
    union = total + (1 - gt).cumsum(0)
    jaccard = 1.0 - intersection / union
    if gt.numel() > 1:
        jaccard = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])
    return jaccard


def lovasz_extension(errors: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Lovász extension of the Jaccard loss of class ``gt`` (0/1, P) at error vector ``errors`` (P)."""
    if errors.numel() == 0:
        return errors.sum()
    errors_sorted, order = torch.sort(errors, descending=True)
    return torch.dot(errors_sorted, jaccard_increments(gt[order]).to(errors_sorted.dtype))


def lovasz_softmax(
    probs: torch.Tensor,
    target: torch.Tensor,
    classes: torch.Tensor | None = None,
    ignore_index: int = 255,
) -> torch.Tensor:
    """Mean over images of the mean over present classes of the Lovász extension.

    ``probs`` B,C,H,W (a distribution over C classes), ``target`` B,H,W, ``classes`` B,C bool of
    the classes that may be scored (None = all); only classes present in an image's target count.

    All images and classes at once, with no GPU->CPU synchronisation: an ignored pixel enters each
    class's sort with error 0 and ground truth 0, which changes no term of the extension (it sorts
    after every pixel with a positive error, and its own term is 0 · g_i).
    """
    b, c = probs.shape[:2]
    p = probs.flatten(2)  # B,C,P
    t = target.flatten(1)  # B,P
    keep = (t != ignore_index).unsqueeze(1)  # B,1,P
    ids = torch.arange(c, device=t.device).view(1, c, 1)
    fg = (t.unsqueeze(1) == ids) & keep  # B,C,P
    errors = torch.where(keep, (fg.to(p.dtype) - p).abs(), torch.zeros((), dtype=p.dtype, device=p.device))
    errors_sorted, order = torch.sort(errors, dim=2, descending=True)
    gt_sorted = torch.gather(fg, 2, order).double()
    total = gt_sorted.sum(2, keepdim=True)
    jaccard = 1.0 - (total - gt_sorted.cumsum(2)) / (total + (1 - gt_sorted).cumsum(2))  # union >= 1: no 0/0
    increments = torch.cat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], dim=2)
    per_class = (errors_sorted * increments.to(errors_sorted.dtype)).sum(2)  # B,C
    present = fg.any(2)
    if classes is not None:
        present = present & classes.bool()
    w = present.to(per_class.dtype)
    n_present = w.sum(1)
    per_image = (per_class * w).sum(1) / n_present.clamp_min(1.0)
    has = (n_present > 0).to(per_image.dtype)
    # no image with a present class: 0, still connected to ``probs`` (as ``probs.sum() * 0``)
    return (per_image * has).sum() / has.sum().clamp_min(1.0) + probs.sum() * 0.0


def soft_iou_loss(
    probs: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor | None = None,
    ignore_index: int = 255,
    eps: float = 1.0,
) -> torch.Tensor:
    """1 − soft IoU per object slot (channels 1..K of ``probs`` B,K+1,H,W), averaged over valid slots.

    ``eps`` smooths the ratio so an empty object predicted empty costs 0.
    """
    k = probs.shape[1] - 1
    keep = (target != ignore_index).unsqueeze(1).float()  # B,1,H,W
    ids = torch.arange(1, k + 1, device=target.device).view(1, k, 1, 1)
    gt = (target.unsqueeze(1) == ids).float() * keep
    p = probs[:, 1:].float() * keep
    inter = (p * gt).flatten(2).sum(-1)
    union = (p + gt - p * gt).flatten(2).sum(-1)
    loss = 1.0 - (inter + eps) / (union + eps)  # B,K
    if valid is not None:
        w = valid.to(loss.dtype)
        return (loss * w).sum() / w.sum().clamp_min(1.0)
    return loss.mean()


def segmentation_loss(
    output: SegmentationOutput,
    target: torch.Tensor,
    cfg: LossConfig,
    valid: torch.Tensor | None = None,
    *,
    as_tensors: bool = False,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Weighted loss mix of ``cfg`` -> (total, {term: value}).

    ``as_tensors``: the values are detached 0-d tensors on the loss's device instead of floats, so
    a training step reads them back once (floats force one GPU->CPU synchronisation per term).

    ``target`` B,H,W long in 0..K (or ``cfg.ignore_index``); ``valid`` B,K bool (None = all).
    CE on ``output.logits``; coarse CE on ``aux["coarse_logits"]`` (refine models); soft IoU on the
    refine output (``aux["refine_logits"]``, else the final logits); Lovász-softmax on the final output.
    """
    target = target.long()
    logits = output.logits.float()
    k = logits.shape[1] - 1
    _check_target_ids(target, k, cfg.ignore_index)
    parts: dict[str, torch.Tensor] = {}
    if cfg.ce > 0:
        parts["ce"] = cfg.ce * F.cross_entropy(logits, target, ignore_index=cfg.ignore_index)
    coarse = output.aux.get("coarse_logits")
    if cfg.coarse_ce > 0 and coarse is not None:
        parts["coarse_ce"] = cfg.coarse_ce * F.cross_entropy(
            coarse.float(), target, ignore_index=cfg.ignore_index
        )
    if cfg.iou > 0:
        refined = output.aux.get("refine_logits", logits).float()
        parts["iou"] = cfg.iou * soft_iou_loss(torch.softmax(refined, 1), target, valid, cfg.ignore_index)
    if cfg.lovasz > 0:
        classes = None
        if valid is not None:
            classes = torch.cat([torch.ones_like(valid[:, :1]), valid], dim=1).bool()
        parts["lovasz"] = cfg.lovasz * lovasz_softmax(
            torch.softmax(logits, 1), target, classes, cfg.ignore_index
        )
    if not parts:
        raise ValueError("loss config has every term switched off")
    total = torch.stack(list(parts.values())).sum()
    values: dict[str, Any] = {name: v.detach() for name, v in parts.items()}
    values["total"] = total.detach()
    if not as_tensors:
        values = {name: float(v) for name, v in values.items()}
    return total, values


def _check_target_ids(target: torch.Tensor, k: int, ignore_index: int) -> None:
    """Target ids must be 0..k or ``ignore_index``: a ValueError on the CPU; on an accelerator an
    asynchronous device assert (reading the ids back would stall every training step)."""
    bad_ids = (target != ignore_index) & ((target < 0) | (target > k))
    if target.device.type != "cpu":
        torch._assert_async(~bad_ids.any(), f"target ids must be in 0..{k} (or {ignore_index})")
        return
    if bool(bad_ids.any()):
        raise ValueError(f"target ids must be in 0..{k} (or {ignore_index}), got {int(target[bad_ids][0])}")
