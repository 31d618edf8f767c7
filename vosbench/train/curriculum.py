"""Schedules that depend only on the epoch: maximum frame skip and spatial-prior source (one phase), learning rate."""

from __future__ import annotations

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

