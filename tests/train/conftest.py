"""Training-test helpers: a tiny trivially learnable video set and a fast config."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from vosbench.train.config import TrainConfig, apply_overrides


@pytest.fixture
def train_root(make_davis_root: Callable[..., Path]) -> Path:
    """Two short videos of moving coloured discs (split ``train``), 48x64."""
    return make_davis_root({"alpha": (6, 2), "beta": (5, 1)}, split="train", size=(48, 64))


@pytest.fixture
def tiny_config(train_root: Path) -> Callable[..., TrainConfig]:
    """Factory: a config that trains stm-tiny on ``train_root`` in ~1 s a step, plus overrides."""

    def make(*overrides: str) -> TrainConfig:
        base = [
            "model.preset=stm-tiny", f"data.root={train_root}", "data.crop=[32, 48]", "data.short_side=[40, 48]",
            "data.samples_per_epoch=4", "data.max_objects=2", "train.batch_size=2", "train.epochs=3",
            "optim.lr=1e-4", "curriculum.end_skip=2", "train.precision=fp32", "train.threads=1", "train.save_every=2",
            "train.log_every=1", "train.allow_random_init=true",
        ]
        return TrainConfig.from_dict(apply_overrides({}, [*base, *overrides]))

    return make
