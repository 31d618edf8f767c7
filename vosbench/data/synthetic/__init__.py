"""The embedded procedural dataset: DAVIS-2017-layout videos with depth and look-alike instances.

``generate_synthetic(root, profile="small", seed=0)`` writes it; see
:mod:`~vosbench.data.synthetic.scene` for the scene model and
:mod:`~vosbench.data.synthetic.render` for the rasteriser.
"""

from vosbench.data.synthetic.generate import DATASET_NAME, generate_synthetic, plan_videos, summarise_manifest
from vosbench.data.synthetic.profiles import PROFILES, SyntheticProfile, parse_size, resolve_profile

__all__ = [
    "DATASET_NAME",
    "PROFILES",
    "SyntheticProfile",
    "generate_synthetic",
    "parse_size",
    "plan_videos",
    "resolve_profile",
    "summarise_manifest",
]
