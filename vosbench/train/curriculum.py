"""Training schedules: maximum frame skip and spatial-prior source (per epoch), learning rate (per step)."""

from __future__ import annotations

import math

from vosbench.train.config import CurriculumSection, OptimSection


def in_final_phase(cfg: CurriculumSection, epoch: int, total_epochs: int) -> bool:
    """SCM §2.3: whether ``epoch`` is one of the last ``final_epochs`` (when ``final_skip`` ≥ 0), in which
    the maximum skip is ``final_skip`` and the spatial prior is the model's own previous prediction."""
    return cfg.final_skip >= 0 and cfg.final_epochs > 0 and epoch >= total_epochs - cfg.final_epochs


def max_skip_at(cfg: CurriculumSection, epoch: int, total_epochs: int) -> int:
    """Maximum number of frames skipped between consecutive sampled frames in ``epoch`` (0-based).

    Linear ramp from ``start_skip`` to ``end_skip`` over ``ramp_epochs`` (the value reaches
    ``end_skip`` at epoch ``ramp_epochs``), then constant; ``final_skip`` in the final phase.
    """
    if in_final_phase(cfg, epoch, total_epochs):
        return cfg.final_skip
    if cfg.ramp_epochs <= 0 or epoch >= cfg.ramp_epochs:
        return cfg.end_skip
    frac = epoch / cfg.ramp_epochs
    return round(cfg.start_skip + frac * (cfg.end_skip - cfg.start_skip))


def lr_at(cfg: OptimSection, epoch: int) -> float:
    """Learning rate of ``epoch``: ``lr`` times ``lr_decay`` for each decay epoch already reached."""
    n = sum(1 for e in cfg.lr_decay_epochs if epoch >= e)
    return cfg.lr * cfg.lr_decay**n


def lr_at_step(cfg: OptimSection, step: int, steps_per_epoch: int, total_steps: int) -> float:
    """Learning rate of 0-based ``step`` of a run of ``total_steps`` (``steps_per_epoch`` per epoch).

    ``step`` schedule: :func:`lr_at` of the step's epoch. ``cosine``: ``lr * (r + (1 - r) *
    (1 + cos(pi * s / S)) / 2)`` with ``r = min_lr_ratio``, ``s`` the steps since the warm-up and
    ``S`` the steps after it minus one (so the last step gets ``lr * r``). During the first
    ``warmup_steps`` steps the value is scaled by ``(step + 1) / warmup_steps``.
    """
    if cfg.schedule == "cosine":
        warm = min(cfg.warmup_steps, total_steps)
        span = max(total_steps - warm - 1, 1)
        frac = min(max(step - warm, 0) / span, 1.0)
        base = cfg.lr * (cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * frac)))
    else:
        base = lr_at(cfg, step // max(steps_per_epoch, 1))
    if step < cfg.warmup_steps:
        base *= (step + 1) / cfg.warmup_steps
    return base
