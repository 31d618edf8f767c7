"""What a model was trained on: vosbench's embedded procedural dataset, or real data.

A training checkpoint records ``trained_on = {"kinds": [...], "roots": [...]}``: the kinds of its
run's dataset roots together with those of its ``train.init_checkpoint`` (a stage started from an
embedded-data stage keeps "embedded"). ``infer`` reads it to say, in one line, when a model that
has only seen the embedded dataset is run on real video.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

EMBEDDED = "embedded"  # `vosbench prepare synthetic` / the quickstart's data
REAL = "real"  # anything else: DAVIS, YouTube-VOS, still-image sets, your own videos

EMBEDDED_NOTE = (
    "{model} was trained only on vosbench's embedded procedural dataset: on real video expect little (the "
    "quickstart's model scores 8.5-12 J&F on five real DAVIS clips, where pasting the first mask on every frame "
    "scores 30.3); for a real model see the README's 'Segment your own video' (converted STM weights, or an hf: model)"
)


def dataset_kind(root: str | os.PathLike) -> str:
    """:data:`EMBEDDED` when ``root`` holds the procedural dataset (its ``manifest.json`` says so), else :data:`REAL`."""
    from vosbench.data.synthetic.generate import DATASET_NAME

    try:
        manifest = json.loads((Path(root) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return REAL
    return EMBEDDED if isinstance(manifest, dict) and manifest.get("dataset") == DATASET_NAME else REAL


def trained_on(roots: list[str], init: dict[str, Any] | None = None) -> dict[str, Any]:
    """The record for a checkpoint trained on ``roots``, starting from weights trained on ``init``."""
    kinds = {dataset_kind(r) for r in roots}
    if init:
        kinds.update(init.get("kinds", []))
    return {"kinds": sorted(kinds), "roots": [str(r) for r in roots]}


def embedded_only(record: dict[str, Any] | None) -> bool:
    """Whether a ``trained_on`` record says the model saw nothing but the embedded dataset."""
    return bool(record) and list(record.get("kinds", [])) == [EMBEDDED]
