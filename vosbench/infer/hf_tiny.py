"""Tiny, randomly initialised transformers video trackers saved to a folder — offline, for tests and benchmarks.

Their masks are meaningless; they run exactly the code path of a real ``hf:`` member (processor,
inference session, mask prompts, memory, post-processing). ``image_size`` is the model's square
input (SAM 2 uses 1024, SAM 3 1008); a multiple of 32 (of 112 for the SAM 3 tracker).
"""

from __future__ import annotations

from pathlib import Path

from vosbench.errors import ConfigError
from vosbench.infer.hf_video import INSTALL_HINT

TINY_FAMILIES = ("sam2_video", "edgetam_video", "sam3_tracker_video")


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
    if image_size % 32 and family != "sam3_tracker_video":
        raise ConfigError(f"image_size must be a multiple of 32, got {image_size}")
    s = image_size
    common, patch = _common(s), 16
    image_cls, video_cls = tf.Sam2ImageProcessor, tf.Sam2VideoVideoProcessor
    if family == "sam2_video":
        config = tf.Sam2VideoConfig(vision_config=_sam2_vision(s), memory_attention_feed_forward_hidden_size=64,
                                    **{**common, **overrides})
        model_cls, proc_cls = tf.Sam2VideoModel, tf.Sam2VideoProcessor
    elif family == "edgetam_video":  # RepViT-M1 (timm, random init) + the perceiver memory of EdgeTAM
        backbone = tf.TimmWrapperConfig(num_labels=1, architecture="repvit_m1", model_args={
            "in_chans": 3, "features_only": True, "out_indices": [0, 1, 2, 3]})
        vision = tf.EdgeTamVisionConfig(backbone_config=backbone, backbone_channel_list=[384, 192, 96, 48],
                                        backbone_feature_sizes=[[s // 4, s // 4], [s // 8, s // 8], [s // 16, s // 16]],
                                        fpn_hidden_size=128)
        config = tf.EdgeTamVideoConfig(
            vision_config=vision, memory_attention_mlp_hidden_size=64, perceiver_resampler_num_latents=16,
            perceiver_resampler_num_latents_2d=16, memory_attention_rope_k_sizes=[4, 4],
            perceiver_resampler_mlp_intermediate_size=32, **{**common, **overrides})
        model_cls, proc_cls = tf.EdgeTamVideoModel, tf.Sam2VideoProcessor
    else:  # sam3_tracker_video: a ViT with 14-pixel patches; image_size must then be a multiple of 112
        if s % 112:
            raise ConfigError(f"the SAM 3 tracker's image_size must be a multiple of 112, got {s}")
        patch, g = 14, s // 14
        common["prompt_encoder_config"]["patch_size"] = patch
        common["memory_attention_rope_feat_sizes"] = [g, g]
        vit = tf.Sam3ViTConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                               image_size=s, patch_size=patch, window_size=4, global_attn_indexes=[1],
                               pretrain_image_size=s)
        vision = tf.Sam3VisionConfig(backbone_config=vit, fpn_hidden_size=128,
                                     backbone_feature_sizes=[[4 * g, 4 * g], [2 * g, 2 * g], [g, g]])
        config = tf.Sam3TrackerVideoConfig(vision_config=vision, memory_attention_feed_forward_hidden_size=64,
                                           **{**common, **overrides})
        model_cls, proc_cls = tf.Sam3TrackerVideoModel, tf.Sam3TrackerVideoProcessor
        image_cls = getattr(tf, "Sam3ImageProcessor", image_cls)
    torch.manual_seed(seed)
    model = model_cls(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "output_hypernetworks_mlps" in name and ".proj_out." in name:
                p.mul_(logit_scale)
    folder = Path(folder)
    model.save_pretrained(folder)
    low = s // patch * 4  # the decoder's low-resolution masks
    processor = proc_cls(image_processor=image_cls(size={"height": s, "width": s}, mask_size={"height": low, "width": low}),
                         video_processor=video_cls(size={"height": s, "width": s}))
    processor.save_pretrained(folder)
    return folder
