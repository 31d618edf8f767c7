"""Fixtures for depth tests: a tiny randomly initialised transformers depth model (no download).

Only tests that need a model skip without the ``depth`` extra; ``folder:`` import, per-video
normalisation and re-run logic are core and are tested on a lean install too.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_depth_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved ~140k-parameter Depth Anything folder (config, weights, preprocessor config)."""
    pytest.importorskip("transformers")
    from vosbench.depth.tiny import write_tiny_depth_model

    return write_tiny_depth_model(tmp_path_factory.mktemp("tiny_depth"), input_size=56)
