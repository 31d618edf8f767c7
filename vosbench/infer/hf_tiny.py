"""Tiny, randomly initialised transformers video trackers saved to a folder — offline, for tests and benchmarks.

Their masks are meaningless; they run exactly the code path of a real ``hf:`` member (processor,
inference session, mask prompts, memory, post-processing). ``image_size`` is the model's square
input (SAM 2 uses 1024); it must be a multiple of 32.
"""

from __future__ import annotations

from pathlib import Path

from vosbench.errors import ConfigError
from vosbench.infer.hf_video import INSTALL_HINT

TINY_FAMILIES = ("sam2_video",)


def _sam2_vision(image_size: int):
    from transformers import Sam2HieraDetConfig, Sam2VisionConfig

    s = image_size
    backbone = Sam2HieraDetConfig(
        hidden_size=16, num_attention_heads=1, blocks_per_stage=[1, 1, 2, 1], embed_dim_per_stage=[16, 32, 64, 128],
        num_attention_heads_per_stage=[1, 1, 2, 2], window_size_per_stage=[8, 4, 4, 4], global_attention_blocks=[3],
        image_size=[s, s], window_positional_embedding_background_size=[4, 4])
    return Sam2VisionConfig(backbone_config=backbone, backbone_channel_list=[128, 64, 32, 16],
                            backbone_feature_sizes=[[s // 4, s // 4], [s // 8, s // 8], [s // 16, s // 16]],
                            fpn_hidden_size=128)


def _common(image_size: int) -> dict:
    """Sizes shared by the families (memory features are 64 channels in transformers, pointers 2 x 64)."""
    s = image_size
    return dict(
        prompt_encoder_config=dict(hidden_size=128, image_size=s, patch_size=16),
        mask_decoder_config=dict(hidden_size=128, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32),
        image_size=s, memory_attention_hidden_size=128, memory_attention_num_layers=1,
        memory_attention_rope_feat_sizes=[s // 16, s // 16], memory_encoder_hidden_size=128,
        memory_encoder_output_channels=64, mask_downsampler_embed_dim=128, memory_fuser_embed_dim=128,
        memory_fuser_intermediate_dim=64,
    )


def write_tiny_tracker(
    folder: str | Path, family: str = "sam2_video", *, image_size: int = 128, seed: int = 0,
    logit_scale: float = 1000.0, **overrides: object,
) -> Path:
    """Save a ~1.3M-parameter tracker of ``family`` (a ``model_type``) and its processor into ``folder``.

    ``logit_scale`` multiplies the mask decoder's output layers: transformers' initialisation
    (std 0.02) gives mask logits of about 1e-3, where every pixel is a near-tie; scaled by 1000
    they are of order 1, so masks have a shape to compare.
    ``overrides``: config fields to change (e.g. ``num_maskmem=3, max_object_pointers_in_encoder=4``)."""
    try:
        import torch
        import transformers as tf
    except ImportError as exc:
        raise ConfigError(f"tiny trackers need `transformers` ({exc}); install it with {INSTALL_HINT}") from None
    if family not in TINY_FAMILIES:
        raise ConfigError(f"no tiny config for {family!r} (known: {', '.join(TINY_FAMILIES)})")
    if image_size % 32:
        raise ConfigError(f"image_size must be a multiple of 32, got {image_size}")
    s = image_size
    if family == "sam2_video":
        config = tf.Sam2VideoConfig(vision_config=_sam2_vision(s), memory_attention_feed_forward_hidden_size=64,
                                    **{**_common(s), **overrides})
        model_cls, proc_cls, image_cls, video_cls = (tf.Sam2VideoModel, tf.Sam2VideoProcessor, tf.Sam2ImageProcessor,
                                                     tf.Sam2VideoVideoProcessor)
    torch.manual_seed(seed)
    model = model_cls(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "output_hypernetworks_mlps" in name and ".proj_out." in name:
                p.mul_(logit_scale)
    folder = Path(folder)
    model.save_pretrained(folder)
    processor = proc_cls(image_processor=image_cls(size={"height": s, "width": s}, mask_size={"height": s // 4, "width": s // 4}),
                         video_processor=video_cls(size={"height": s, "width": s}))
    processor.save_pretrained(folder)
    return folder
