"""One entry point from a config file and command-line options to a finished run."""

from __future__ import annotations

import os
from pathlib import Path

from vosbench.progress import Progress
from vosbench.train.config import TrainConfig, load_config
from vosbench.train.loop import TrainResult, train


def resolve_run_config(config: str | os.PathLike, *, data: str | os.PathLike | None = None,
                       overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Load ``config`` with ``--set`` overrides; ``data`` replaces ``data.root``."""
    extra = list(overrides)
    cfg = load_config(config, extra)
    if data is not None:
        cfg.data.root = str(data)
    return cfg


def default_out_dir(config: str | os.PathLike) -> Path:
    """``runs/<config name>`` when no --out is given."""
    return Path("runs") / Path(config).stem


def train_from_config(
    config: str | os.PathLike,
    *,
    data: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    max_steps: int | None = None,
    device: str = "auto",
    overrides: list[str] | tuple[str, ...] = (),
    progress: Progress | None = None,
    allow_random_init: bool = False,
) -> TrainResult:
    """Train from a TOML config (what ``vosbench train`` and each torchrun worker call)."""
    cfg = resolve_run_config(config, data=data, overrides=overrides)
    return train(cfg, out if out is not None else default_out_dir(config), resume=resume,
                 max_steps=max_steps, device=device, progress=progress, allow_random_init=allow_random_init)
