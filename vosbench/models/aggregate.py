"""Soft aggregation (STM §3.3): K per-object foreground probabilities -> K+1 logits.

Background = prod_k (1 - p_k); object k keeps p_k; each is turned into a logit log(p / (1 - p)) so a
softmax over the K+1 channels gives a distribution summing to 1 per pixel. Padded (invalid) object
slots are left out of the background product and get a very negative logit (probability 0).
"""

from __future__ import annotations

import torch

INVALID_LOGIT = -1e4  # representable in fp16/bf16; exp() underflows to exactly 0 in a softmax


def soft_aggregate(probs: torch.Tensor, valid: torch.Tensor | None = None, eps: float = 1e-7) -> torch.Tensor:
    """``probs`` B,K,H,W in [0,1], ``valid`` B,K bool (None = all) -> logits B,K+1,H,W (float32)."""
    p = probs.float().clamp(eps, 1 - eps)
    if valid is not None:
        keep = valid.to(device=p.device, dtype=torch.bool)[:, :, None, None]
        p = torch.where(keep, p, torch.zeros_like(p))
    background = torch.prod(1 - p, dim=1, keepdim=True)
    em = torch.cat([background, p], dim=1).clamp(eps, 1 - eps)
    logits = torch.log(em) - torch.log1p(-em)
    if valid is not None:
        keep_all = torch.cat([torch.ones_like(keep[:, :1]), keep], dim=1)
        logits = logits.masked_fill(~keep_all, INVALID_LOGIT)
    return logits
