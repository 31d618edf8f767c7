"""Fixtures for inference tests: tiny random-init checkpoints saved once per session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from vosbench.models import build_model, save_checkpoint


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``tiny_checkpoint("stm-tiny")`` -> path of a random-init checkpoint of that preset (cached)."""
    folder = tmp_path_factory.mktemp("ckpt")
    cache: dict[str, Path] = {}

    def get(preset: str, seed: int = 0) -> Path:
        key = f"{preset}-{seed}"
        if key not in cache:
            torch.manual_seed(seed)
            cache[key] = save_checkpoint(folder / f"{key}.pt", build_model(preset))
        return cache[key]

    return get
