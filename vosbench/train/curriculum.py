"""Schedules that depend only on the epoch: maximum frame skip, learning rate, spatial-prior source."""

from __future__ import annotations

from vosbench.train.config import CurriculumSection, OptimSection, TrainSection


def max_skip_at(cfg: CurriculumSection, epoch: int, total_epochs: int) -> int:
    """Maximum number of frames skipped between consecutive sampled frames in ``epoch`` (0-based).

    Linear ramp from ``start_skip`` to ``end_skip`` over ``ramp_epochs`` (the value reaches
    ``end_skip`` at epoch ``ramp_epochs``), then constant; ``final_skip`` (when ≥ 0) for the last
    ``final_epochs`` epochs.
    """
    if cfg.final_skip >= 0 and cfg.final_epochs > 0 and epoch >= total_epochs - cfg.final_epochs:
        return cfg.final_skip
    if cfg.ramp_epochs <= 0 or epoch >= cfg.ramp_epochs:
        return cfg.end_skip
    frac = epoch / cfg.ramp_epochs
    return round(cfg.start_skip + frac * (cfg.end_skip - cfg.start_skip))


def lr_at(cfg: OptimSection, epoch: int) -> float:
    """Learning rate of ``epoch``: ``lr`` times ``lr_decay`` for each decay epoch already reached."""
    n = sum(1 for e in cfg.lr_decay_epochs if epoch >= e)
    return cfg.lr * cfg.lr_decay**n


def use_own_prior(cfg: TrainSection, epoch: int) -> bool:
    """SCM training strategy: True once the spatial prior should come from the model's own prediction."""
    return cfg.prior_switch_epoch >= 0 and epoch >= cfg.prior_switch_epoch
