"""Optimiser set-up: Adam (β 0.9, 0.999 by default) with an epoch-wise learning rate."""

from __future__ import annotations

import torch

from vosbench.train.config import OptimSection


def build_optimizer(model: torch.nn.Module, cfg: OptimSection) -> torch.optim.Adam:
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
