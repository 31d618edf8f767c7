"""Inference: the per-video memory engine, TTA, online finetuning, ensembles, dataset runs.

Names load on first use (PEP 562), so ``vosbench.infer.options`` (the inference-option table the
CLI builds its flags from) imports without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DEFAULT_MAX_MEM_FRAMES": "options",
    "EngineConfig": "engine",
    "EngineState": "engine",
    "InferenceCore": "engine",
    "EnsembleInference": "ensemble",
    "LoadedMember": "ensemble",
    "load_members": "ensemble",
    "video_predictor": "ensemble",
    "FinetuneConfig": "finetune",
    "finetune_model": "finetune",
    "MemoryBank": "memory",
    "InferOptions": "options",
    "MemberSpec": "recipe",
    "Recipe": "recipe",
    "load_recipe": "recipe",
    "parse_ensemble": "recipe",
    "InferSummary": "run",
    "SequenceResult": "run",
    "infer_dataset": "run",
    "infer_sequence": "run",
    "VideoSummary": "video",
    "infer_video": "video",
    "TTAConfig": "tta",
    "TTAInference": "tta",
    "parse_scales": "tta",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vosbench.infer' has no attribute {name!r}")
    return getattr(importlib.import_module(f"vosbench.infer.{module}"), name)
