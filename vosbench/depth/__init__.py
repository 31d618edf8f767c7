"""Depth maps for D-STM: monocular estimators and per-video preparation of ``ROOT/Depth/<res>/``."""

from vosbench.depth.estimators import (
    DepthEstimator,
    FolderDepthEstimator,
    FrameKey,
    TransformersDepthEstimator,
    make_estimator,
)
from vosbench.depth.prepare import DepthPrepareSummary, PercentileNormalization, prepare_depth

__all__ = [
    "DepthEstimator",
    "DepthPrepareSummary",
    "FolderDepthEstimator",
    "FrameKey",
    "PercentileNormalization",
    "TransformersDepthEstimator",
    "make_estimator",
    "prepare_depth",
]
