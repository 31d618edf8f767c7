"""Inference: the per-video memory engine, TTA, online finetuning, ensembles, dataset runs."""

from vosbench.infer.engine import DEFAULT_MAX_MEM_FRAMES, EngineConfig, EngineState, InferenceCore
from vosbench.infer.ensemble import EnsembleInference, LoadedMember, load_members, video_predictor
from vosbench.infer.finetune import FinetuneConfig, finetune_model
from vosbench.infer.memory import MemoryBank
from vosbench.infer.recipe import MemberSpec, Recipe, load_recipe, parse_ensemble
from vosbench.infer.run import InferOptions, InferSummary, SequenceResult, infer_dataset, infer_sequence
from vosbench.infer.tta import TTAConfig, TTAInference, parse_scales

__all__ = [
    "DEFAULT_MAX_MEM_FRAMES",
    "EngineConfig",
    "EngineState",
    "EnsembleInference",
    "FinetuneConfig",
    "InferOptions",
    "InferSummary",
    "InferenceCore",
    "LoadedMember",
    "MemberSpec",
    "MemoryBank",
    "Recipe",
    "SequenceResult",
    "TTAConfig",
    "TTAInference",
    "finetune_model",
    "infer_dataset",
    "infer_sequence",
    "load_members",
    "load_recipe",
    "parse_ensemble",
    "parse_scales",
    "video_predictor",
]
