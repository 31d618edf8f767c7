"""A tiny, randomly initialised Depth Anything model saved to a folder — offline, for tests and benchmarks.

Its outputs are meaningless as depth; it exercises exactly the code path of a real
``transformers`` depth model (processor, forward pass, post-processing, disparity conversion).
"""

from __future__ import annotations

from pathlib import Path

from vosbench.depth.estimators import INSTALL_HINT
from vosbench.errors import ConfigError


def write_tiny_depth_model(folder: str | Path, *, input_size: int = 56, seed: int = 0) -> Path:
    """Save a ~140k-parameter Depth Anything (tiny Dinov2 backbone) plus its image processor.

    ``input_size`` is the processor's target size (Depth Anything uses 518); the short side of a
    frame is resized to it, keeping the aspect ratio, in multiples of the 14-pixel patch.
    """
    try:
        import torch
        from transformers import (
            DepthAnythingConfig,
            DepthAnythingForDepthEstimation,
            Dinov2Config,
            DPTImageProcessor,
        )
    except ImportError as exc:
        raise ConfigError(f"the tiny depth model needs `transformers` ({exc}); install it with {INSTALL_HINT}") from None
    folder = Path(folder)
    backbone = Dinov2Config(
        hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64,
        patch_size=14, image_size=input_size, out_features=["stage1", "stage2", "stage3", "stage4"],
        reshape_hidden_states=False,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone, reassemble_hidden_size=32, neck_hidden_sizes=[8, 16, 32, 32],
        fusion_hidden_size=16, head_hidden_size=8, depth_estimation_type="relative",
    )
    torch.manual_seed(seed)
    model = DepthAnythingForDepthEstimation(config).eval()
    model.save_pretrained(folder)
    processor = DPTImageProcessor(
        do_resize=True, size={"height": input_size, "width": input_size}, keep_aspect_ratio=True,
        ensure_multiple_of=14, resample=3, do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
        image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225], do_pad=False,
    )
    processor.save_pretrained(folder)
    return folder
