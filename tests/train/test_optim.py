"""The optimiser: Adam with the configured betas, and the epoch-wise learning rate it is given."""

from __future__ import annotations

import torch

from vosbench.train.config import OptimSection
from vosbench.train.optim import build_optimizer, set_lr


def test_adam_with_paper_betas_by_default() -> None:
    model = torch.nn.Linear(2, 2)
    opt = build_optimizer(model, OptimSection())
    assert isinstance(opt, torch.optim.Adam)
    group = opt.param_groups[0]
    assert group["betas"] == (0.9, 0.999) and group["lr"] == 1e-5 and group["weight_decay"] == 0.0


def test_configured_betas_lr_and_frozen_parameters() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    model[0].weight.requires_grad_(False)
    opt = build_optimizer(model, OptimSection(lr=3e-4, betas=(0.8, 0.99), weight_decay=1e-4))
    group = opt.param_groups[0]
    assert group["betas"] == (0.8, 0.99) and group["lr"] == 3e-4 and group["weight_decay"] == 1e-4
    assert not any(p is model[0].weight for p in group["params"]) and len(group["params"]) == 3
    set_lr(opt, 1.5e-4)
    assert all(g["lr"] == 1.5e-4 for g in opt.param_groups)
