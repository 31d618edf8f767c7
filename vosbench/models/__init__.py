"""The STM model family (STM, SCM, D-STM) as configurations of one component library.

See ``docs/model-api.md`` for the contract used by training and inference.
"""

from vosbench.models.aggregate import soft_aggregate
from vosbench.models.checkpoint import load_checkpoint, save_checkpoint
from vosbench.models.config import LossConfig, ModelConfig
from vosbench.models.network import VOSModel
from vosbench.models.outputs import MemoryEncoding, QueryEncoding, SegmentationOutput
from vosbench.models.registry import build_model, get_preset, list_presets, register_preset

__all__ = [
    "LossConfig",
    "MemoryEncoding",
    "ModelConfig",
    "QueryEncoding",
    "SegmentationOutput",
    "VOSModel",
    "build_model",
    "get_preset",
    "list_presets",
    "load_checkpoint",
    "register_preset",
    "save_checkpoint",
    "soft_aggregate",
]
