"""VOSModel: the STM family assembled from a :class:`ModelConfig`.

The module holds no video state. A video is processed by the caller with three calls:
``encode_query`` once per frame, ``encode_memory`` for frames added to memory, and ``segment``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vosbench.errors import ConfigError
from vosbench.models.aggregate import soft_aggregate
from vosbench.models.aspp import ASPP
from vosbench.models.backbone import Backbone, resolve_backbone_weights
from vosbench.models.config import ModelConfig
from vosbench.models.decoder import Decoder
from vosbench.models.encoders import MemoryEncoder, QueryEncoder
from vosbench.models.memory import MemoryReader
from vosbench.models.outputs import MemoryEncoding, QueryEncoding, SegmentationOutput
from vosbench.models.refine import RefineModule
from vosbench.models.spatial import SpatialPrior
from vosbench.padding import STRIDE, pad_to_stride, unpad

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEPTH_MEAN, DEPTH_STD = 0.5, 0.25  # depth maps come in [0, 1]


class VOSModel(nn.Module):
    """STM / SCM / D-STM network; which parts exist is decided by ``config``."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        config.validate()
        self.config = config
        depth_in = ("rgb_mean",) if config.depth else ()
        timm_kwargs = config.backbone_kwargs
        query_backbone = Backbone(config.backbone, depth_in, config.freeze_bn, timm_kwargs)
        memory_backbone = Backbone(
            config.backbone, depth_in + ("zeros", "zeros"), config.freeze_bn, timm_kwargs
        )
        if config.backbone_weights:
            imagenet = resolve_backbone_weights(config.backbone_weights, config.backbone)
            query_backbone.load_imagenet(imagenet, label=config.backbone_weights)
            memory_backbone.load_imagenet(imagenet, label=config.backbone_weights)
        self.query_encoder = QueryEncoder(query_backbone, config.key_dim, config.value_dim)
        self.memory_encoder = MemoryEncoder(memory_backbone, config.key_dim, config.value_dim)
        self.memory_reader = MemoryReader(config.memory.chunk_size)
        embed = 2 * config.value_dim
        mdim = config.decoder.channels
        prior_channels = mdim if config.spatial.after_aspp else embed
        self.spatial_prior = (
            SpatialPrior(prior_channels, config.spatial.kernel_size) if config.spatial_prior else None
        )
        if config.aspp:
            self.context: nn.Module = ASPP(embed, mdim, config.aspp_cfg.rates, config.aspp_cfg.image_pool)
        else:
            self.context = nn.Conv2d(embed, mdim, 3, padding=1)  # STM's convFM
        self.decoder = Decoder(mdim, self.query_encoder.skip_channels)
        self.refine = (
            RefineModule(config.refine_cfg.channels, config.refine_cfg.levels, config.refine_cfg.use_image)
            if config.refine
            else None
        )
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    # --- inputs ---------------------------------------------------------------------------------

    def _prepare_image(
        self, image: torch.Tensor, depth: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (padded normalised image B,3,Hp,Wp, padded encoder input B,3(+1),Hp,Wp).

        Padding comes first, on the [0, 1] inputs (:mod:`vosbench.padding`, STM's rule): the padded
        area is a black image (and zero depth) to the encoders.
        """
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be B,3,H,W, got {tuple(image.shape)}")
        x = (pad_to_stride(image) - self.mean.to(image.dtype)) / self.std.to(image.dtype)
        if not self.config.depth:
            return x, x
        if depth is None:
            raise ConfigError(
                f"model '{self.config.name}' uses depth: pass depth maps (dataset depth or an estimator)"
            )
        if depth.shape[0] != image.shape[0] or depth.shape[-2:] != image.shape[-2:]:
            raise ValueError(f"depth {tuple(depth.shape)} does not match image {tuple(image.shape)}")
        d = pad_to_stride(depth.reshape(image.shape[0], 1, *image.shape[-2:]).to(x.dtype))
        return x, torch.cat([x, (d - DEPTH_MEAN) / DEPTH_STD], dim=1)

    # --- the three calls ------------------------------------------------------------------------

    def encode_query(self, image: torch.Tensor, depth: torch.Tensor | None = None) -> QueryEncoding:
        """image B,3,H,W in [0,1] (depth B,1,H,W) -> QueryEncoding shared by all objects."""
        padded, x = self._prepare_image(image, depth)
        key, value, skips = self.query_encoder(x)
        return QueryEncoding(key, value, skips, (int(image.shape[-2]), int(image.shape[-1])), padded)

    def encode_memory(
        self,
        image: torch.Tensor,
        masks: torch.Tensor,
        depth: torch.Tensor | None = None,
        query: QueryEncoding | None = None,
    ) -> MemoryEncoding:
        """image B,3,H,W, masks B,K,H,W -> MemoryEncoding (key B,K,Ck,h,w, value B,K,Cv,h,w).

        ``query`` is accepted for API symmetry; STM's memory encoder shares no computation with the
        query encoder, so it is not used.
        """
        b, k = masks.shape[:2]
        if masks.dim() != 4 or masks.shape[0] != image.shape[0] or masks.shape[-2:] != image.shape[-2:]:
            raise ValueError(
                f"masks {tuple(masks.shape)} must be B,K,H,W matching image {tuple(image.shape)}"
            )
        _, x = self._prepare_image(image, depth)
        m = pad_to_stride(masks.to(x.dtype))  # zero outside the frame
        others = (m.sum(dim=1, keepdim=True) - m).clamp(0, 1)  # B,K,Hp,Wp
        x = x.unsqueeze(1).expand(-1, k, -1, -1, -1)  # B,K,C,Hp,Wp
        x = torch.cat([x, m.unsqueeze(2), others.unsqueeze(2)], dim=2).flatten(0, 1)  # B*K,C+2,Hp,Wp
        key, value = self.memory_encoder(x)
        return MemoryEncoding(key.unflatten(0, (b, k)), value.unflatten(0, (b, k)))

    def segment(
        self,
        query: QueryEncoding,
        memory_key: torch.Tensor,
        memory_value: torch.Tensor,
        prev_mask: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
    ) -> SegmentationOutput:
        """Memory read + heads + soft aggregation -> SegmentationOutput (B,K+1,H,W maps)."""
        b, k = memory_key.shape[:2]
        h, w = query.image_size
        feat = self.memory_reader(query.key, query.value, memory_key, memory_value)  # B,K,2Cv,h,w
        feat = feat.flatten(0, 1)  # B*K,2Cv,h,w
        prior_mask = None
        if self.spatial_prior is not None:
            if prev_mask is None:
                raise ConfigError(
                    f"model '{self.config.name}' has a spatial prior: segment() needs prev_mask"
                )
            if prev_mask.shape != (b, k, h, w):
                raise ValueError(f"prev_mask {tuple(prev_mask.shape)} must be {(b, k, h, w)}")
            prior_mask = pad_to_stride(prev_mask).flatten(0, 1).unsqueeze(1)  # B*K,1,Hp,Wp
        after_aspp = self.config.spatial.after_aspp
        if prior_mask is not None and not after_aspp:
            feat, _ = self.spatial_prior(feat, prior_mask)
        x = self.context(feat)  # B*K,mdim,h,w
        if prior_mask is not None and after_aspp:
            x, _ = self.spatial_prior(x, prior_mask)
        logit4 = self.decoder(x, query.skips, k)  # B*K,1,Hp/4,Wp/4
        padded_size = (feat.shape[-2] * STRIDE, feat.shape[-1] * STRIDE)
        coarse = F.interpolate(logit4, size=padded_size, mode="bilinear", align_corners=False)  # B*K,1,Hp,Wp
        coarse_logits = soft_aggregate(torch.sigmoid(unpad(coarse, (h, w))).reshape(b, k, h, w), valid)
        aux: dict[str, torch.Tensor] = {}
        if self.refine is not None:
            refined = unpad(self.refine(coarse, query.image, k), (h, w))
            logits = soft_aggregate(torch.sigmoid(refined).reshape(b, k, h, w), valid)
            aux["coarse_logits"] = coarse_logits
            aux["refine_logits"] = logits
        else:
            logits = coarse_logits
        return SegmentationOutput(logits=logits, probs=torch.softmax(logits, dim=1), aux=aux)

    def forward(
        self,
        image: torch.Tensor,
        memory_images: torch.Tensor,
        memory_masks: torch.Tensor,
        prev_mask: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
        depth: torch.Tensor | None = None,
        memory_depth: torch.Tensor | None = None,
    ) -> SegmentationOutput:
        """Convenience: segment ``image`` B,3,H,W from memory frames B,T,3,H,W with masks B,T,K,H,W."""
        query = self.encode_query(image, depth)
        encodings = [
            self.encode_memory(
                memory_images[:, t], memory_masks[:, t], None if memory_depth is None else memory_depth[:, t]
            )
            for t in range(memory_images.shape[1])
        ]
        key, value = MemoryEncoding.stack(encodings)
        return self.segment(query, key, value, prev_mask=prev_mask, valid=valid)

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)
