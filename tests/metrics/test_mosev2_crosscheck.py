"""`evaluate --task mosev2` equals the public MOSEv2 scorer (run outside the repository) on generated
sets, per object (unrounded) and globally (its 2 decimals). Skipped unless ``MOSEV2_SCORER`` names a
folder holding the scorer's ``score.py``, ``metricsv2.py`` and ``track_progress_rich.py``
(henghuiding/MOSE-api, ``MOSEv2/sam2_rcms/tools/``); see ``benchmarks/mosev2_crosscheck.py``."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

SCORER = os.environ.get("MOSEV2_SCORER")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SCORER or not (Path(SCORER) / "score.py").is_file(), reason="MOSEV2_SCORER not set"),
]


def test_equal_to_the_public_scorer(tmp_path):
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "mosev2_crosscheck.py"
    spec = importlib.util.spec_from_file_location("mosev2_crosscheck", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    worst = module.crosscheck(Path(SCORER).resolve(), tmp_path, seeds=2, videos=6)
    assert worst["with disappearance"] > 0 and worst["with reappearance"] > 0
    for name, diff in worst.items():
        if name not in ("objects", "with disappearance", "with reappearance"):
            assert diff <= 1e-12, (name, diff)
