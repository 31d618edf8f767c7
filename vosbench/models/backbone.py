"""timm feature backbones with extra input channels, frozen BatchNorm and ImageNet weights.

ImageNet weights (``model.backbone_weights``) are a timm pretrained tag, ``timm:<model>.<tag>`` (e.g.
``timm:resnet50.tv_in1k``), fetched by timm's own pretrained loading (Hugging Face hub download or its
cache), or a local ``.pth``/``.safetensors`` classification state_dict.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
from urllib.parse import urlparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import timm
import torch
import torch.nn.functional as F
from torch import nn

from vosbench.errors import CheckpointError, ConfigError

log = logging.getLogger(__name__)

# How an input channel beyond RGB is initialised when ImageNet weights are loaded:
# "zeros" (mask channels: the network starts as the RGB network and learns to use the mask) or
# "rgb_mean" (depth: behaves like a grey image channel).
CHANNEL_INIT = ("zeros", "rgb_mean")
FEATURE_STRIDES = (4, 8, 16)
DEFAULT_OUT_INDICES = (1, 2, 3)  # timm index of stride 4/8/16 when the stem feature (stride 2) is 0
TIMM_PREFIX = "timm:"
HUB_PROBE_TIMEOUT_S = 5.0


class BackboneWeightsUnavailable(CheckpointError):
    """Named ImageNet weights cannot be had: not in timm's cache and the hub cannot be reached."""


class FrozenStatsBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm that always normalises with its running statistics, even in train mode.

    Unlike ``FrozenBatchNorm2d`` the affine weight and bias stay trainable: with random
    initialisation timm zero-initialises the last BN weight of each residual block, and a fully
    frozen BN would keep those branches at zero forever. Batch size 1 and 1×1 maps work in train
    mode (no batch statistics are computed), and the running statistics never move.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
        )


class _EvalModeStatistics:
    """Mixin for BatchNorm subclasses with extra behaviour (timm's ``BatchNormAct2d`` = BN + act):
    ``train()`` keeps the module in eval mode, so it normalises with its running statistics and never
    updates them, while its own forward (activation, drop) and trainable affine are kept."""

    def train(self, mode: bool = True):  # noqa: ARG002 - statistics stay frozen whatever the mode
        return super().train(False)  # type: ignore[misc]


@functools.cache
def _frozen_class(cls: type) -> type:
    """One eval-mode subclass per BatchNorm class (cached so frozen modules share a class)."""
    return type(f"FrozenStats{cls.__name__}", (_EvalModeStatistics, cls), {})


def bn_statistics_frozen(module: nn.Module) -> bool:
    """Whether ``module`` is a BatchNorm whose statistics :func:`freeze_bn_statistics` froze."""
    return isinstance(module, (FrozenStatsBatchNorm2d, _EvalModeStatistics))


def freeze_bn_statistics(module: nn.Module) -> nn.Module:
    """Freeze the statistics of every BatchNorm below ``module`` (in place).

    A plain ``BatchNorm2d`` becomes a :class:`FrozenStatsBatchNorm2d`; a BatchNorm subclass (timm's
    ``BatchNormAct2d`` carries the activation that follows the BN) keeps its class's forward and is
    held in eval mode instead, so no activation is lost.
    """
    for name, child in module.named_children():
        if bn_statistics_frozen(child):
            continue
        if type(child) is nn.BatchNorm2d:
            frozen = FrozenStatsBatchNorm2d(child.num_features, eps=child.eps, affine=child.affine)
            frozen.load_state_dict(child.state_dict())
            setattr(module, name, frozen)
        elif isinstance(child, nn.modules.batchnorm._BatchNorm):
            child.__class__ = _frozen_class(type(child))
            child.eval()
        else:
            freeze_bn_statistics(child)
    return module


class Backbone(nn.Module):
    """A timm trunk returning stride-4, stride-8 and stride-16 features.

    ``extra_channels`` names the initialisation of each input channel after RGB (see ``CHANNEL_INIT``);
    ``timm_kwargs`` go to ``timm.create_model`` (e.g. ``channels``/``stem_width`` for a narrower ResNet).
    """

    def __init__(
        self,
        name: str,
        extra_channels: Sequence[str] = (),
        freeze_bn: bool = True,
        timm_kwargs: Mapping[str, Any] | None = None,
    ):
        super().__init__()
        for kind in extra_channels:
            if kind not in CHANNEL_INIT:
                raise ValueError(f"unknown channel init '{kind}'")
        self.extra_channels = tuple(extra_channels)
        self.in_chans = 3 + len(self.extra_channels)
        kwargs = dict(timm_kwargs or {})
        body = _create_features(name, self.in_chans, DEFAULT_OUT_INDICES, kwargs)
        # ResNets, ResNeSts, EfficientNets... have a stride-2 stem feature first; others (ConvNeXt)
        # start at stride 4: pick the indices by stride, rebuilding the trunk when they differ.
        indices = stride_indices(name, [int(i["reduction"]) for i in body.feature_info.info])
        if indices != DEFAULT_OUT_INDICES:
            body = _create_features(name, self.in_chans, indices, kwargs)
        if freeze_bn:
            body = freeze_bn_statistics(body)
        self.body = body
        self.name = name
        self.channels: tuple[int, int, int] = tuple(body.feature_info.channels())  # type: ignore[assignment]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``x``: B,in_chans,H,W (H, W multiples of 16) -> [stride4, stride8, stride16] features."""
        return self.body(x)

    def load_imagenet(self, weights: str | os.PathLike | Mapping[str, torch.Tensor], label: str = "") -> None:
        """Load a timm classification state_dict: a local file (torch or safetensors) or the dict itself.

        Extra input channels are initialised per ``extra_channels`` (see :func:`expand_input_conv`);
        ``label`` names the weights in error messages (default: the path).
        """
        if isinstance(weights, Mapping):
            state = dict(weights)
            path = label or "backbone weights"
        else:
            state = read_state_dict(weights)
            path = label or str(weights)
        own = self.body.state_dict()
        new: dict[str, torch.Tensor] = {}
        adapted: list[str] = []
        for key, target in own.items():
            src_key = key if key in state else classifier_key(key)
            if src_key not in state:
                continue
            src = state[src_key]
            if src.shape == target.shape:
                new[key] = src
            elif (
                src.ndim == 4
                and target.ndim == 4
                and src.shape[1] == 3
                and target.shape[1] == self.in_chans
                and src.shape[0] == target.shape[0]
                and src.shape[2:] == target.shape[2:]
            ):
                new[key] = expand_input_conv(src, self.extra_channels)
                adapted.append(key)
            else:
                raise CheckpointError(
                    f"{path}: weight '{key}' has shape {tuple(src.shape)}, backbone '{self.name}' "
                    f"needs {tuple(target.shape)}"
                )
        missing = [k for k in own if k not in new and not k.endswith("num_batches_tracked")]
        # Keys of stages the features-only trunk drops (layer4, fc) are expected; extra keys inside a
        # stage it keeps mean another depth of network (e.g. resnet34 weights for resnet18).
        known = set(own) | {classifier_key(k) for k in own}
        kept_stages = tuple({classifier_key(k.split(".")[0]) + "." for k in own})  # "layer1.", "stages.0."
        foreign = [
            k
            for k in state
            if k not in known and k.startswith(kept_stages) and not k.endswith("num_batches_tracked")
        ]
        if foreign and not missing:
            raise CheckpointError(
                f"{path}: not a '{self.name}' state_dict (unexpected weight '{foreign[0]}')"
            )
        if missing:
            raise CheckpointError(
                f"{path}: not a '{self.name}' state_dict ({len(missing)} backbone weights missing, "
                f"e.g. '{missing[0]}')"
            )
        if self.in_chans != 3 and not adapted:
            raise CheckpointError(f"{path}: no 3-channel input conv found to extend for '{self.name}'")
        self.body.load_state_dict(new, strict=False)
        log.debug("loaded %d tensors from %s (input conv adapted: %s)", len(new), path, adapted)


def timm_tag(spec: str) -> str | None:
    """``resnet50.tv_in1k`` for ``timm:resnet50.tv_in1k``; None for a local path."""
    return spec[len(TIMM_PREFIX):] if spec.startswith(TIMM_PREFIX) else None


def check_backbone_weights(spec: str, backbone: str) -> None:
    """Cheap checks of ``model.backbone_weights`` (no download): a known timm tag of ``backbone``'s
    architecture, or an existing file. Raises :class:`ConfigError` / :class:`CheckpointError`."""
    tag = timm_tag(spec)
    if tag is None:
        if not Path(spec).is_file():
            raise CheckpointError(f"{spec}: backbone weights file not found (model.backbone_weights)")
        return
    arch, dot, _ = tag.partition(".")
    if not dot or tag not in timm.list_pretrained(arch + ".*"):
        known = ", ".join(timm.list_pretrained(arch + ".*")[:8]) or "none"
        raise ConfigError(
            f"model.backbone_weights '{spec}': unknown timm pretrained tag (timm tags of '{arch}': {known})"
        )
    if arch != backbone:
        raise ConfigError(
            f"model.backbone_weights '{spec}' are weights of '{arch}', but model.backbone is '{backbone}'"
        )


def resolve_backbone_weights(spec: str, backbone: str) -> dict[str, torch.Tensor]:
    """The ImageNet classification state_dict named by ``spec`` (see the module docstring).

    A timm tag goes through ``timm.create_model(tag, pretrained=True)`` (timm's hub download or its
    cache). Offline with nothing cached this raises :class:`BackboneWeightsUnavailable` at once,
    naming the tag and how to give a local file.
    """
    check_backbone_weights(spec, backbone)
    tag = timm_tag(spec)
    if tag is None:
        return read_state_dict(spec)
    cfg = timm.models.get_pretrained_cfg(tag)
    if cfg is not None and cfg.hf_hub_id and not _hub_cached(cfg.hf_hub_id, cfg.hf_hub_filename):
        reason = _hub_unreachable()
        if reason:
            raise _unavailable(spec, arch=tag.partition(".")[0], reason=reason)
    try:
        model = timm.create_model(tag, pretrained=True)
    except (OSError, RuntimeError, ValueError) as exc:  # hub/url errors are OSError subclasses
        raise _unavailable(spec, tag.partition(".")[0], f"{type(exc).__name__}: {exc}".splitlines()[0]) from None
    return model.state_dict()


def _unavailable(spec: str, arch: str, reason: str) -> BackboneWeightsUnavailable:
    return BackboneWeightsUnavailable(
        f"backbone weights '{spec}' cannot be downloaded ({reason}); run once with internet access "
        f"(timm caches them), or set model.backbone_weights to a local .pth/.safetensors file of "
        f"'{arch}' ImageNet weights"
    )


def _hub_cached(repo_id: str, filename: str | None) -> bool:
    """Whether the Hugging Face cache already holds the weights of ``repo_id`` (as timm reads them)."""
    from huggingface_hub import try_to_load_from_cache

    names = [filename] if filename else ["model.safetensors", "pytorch_model.bin"]
    repo, _, revision = repo_id.partition("@")
    return any(
        isinstance(try_to_load_from_cache(repo, name, revision=revision or None), str) for name in names
    )


def _hub_unreachable() -> str:
    """Why the hub cannot be reached ("" when it can): offline mode, or no connection to its host.

    Checked up front because huggingface_hub retries an unreachable host for about a minute per file.
    """
    from huggingface_hub import constants

    if constants.is_offline_mode():
        return "HF_HUB_OFFLINE is set and the weights are not in the cache"
    url = urlparse(constants.ENDPOINT)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=HUB_PROBE_TIMEOUT_S).close()
    except OSError as exc:
        return f"not in the cache and {host} is unreachable: {exc.strerror or exc}"
    return ""


def _create_features(
    name: str, in_chans: int, out_indices: tuple[int, ...], kwargs: dict[str, Any]
) -> nn.Module:
    try:
        return timm.create_model(
            name, pretrained=False, features_only=True, in_chans=in_chans, out_indices=out_indices, **kwargs
        )
    except RuntimeError as exc:  # timm raises RuntimeError for unknown names
        raise ConfigError(f"unknown timm backbone '{name}': {exc}") from None
    except TypeError as exc:
        raise ConfigError(f"backbone '{name}' rejects backbone_kwargs {kwargs}: {exc}") from None


def stride_indices(name: str, reductions: Sequence[int]) -> tuple[int, ...]:
    """Feature indices of the (deepest) stride-4, stride-8 and stride-16 features of a timm trunk."""
    indices = []
    for stride in FEATURE_STRIDES:
        found = [i for i, r in enumerate(reductions) if r == stride]
        if not found:
            raise ConfigError(
                f"backbone '{name}' gives strides {list(reductions)}, need stride-4/8/16 features"
            )
        indices.append(found[-1])
    return tuple(indices)


def classifier_key(key: str) -> str:
    """The classification-model name of a features-only weight.

    timm flattens nested ``Sequential`` trunks of some models (ConvNeXt) for ``features_only``, so
    ``stem.0.weight`` / ``stages.1.…`` become ``stem_0.weight`` / ``stages_1.…``; other keys stay.
    """
    head, dot, rest = key.partition(".")
    base, sep, index = head.rpartition("_")
    if sep and base and index.isdigit():
        return f"{base}.{index}{dot}{rest}"
    return key


def expand_input_conv(weight: torch.Tensor, extra_channels: Sequence[str]) -> torch.Tensor:
    """RGB conv weight O,3,kh,kw -> O,3+n,kh,kw with each extra channel initialised per its kind."""
    extras = []
    for kind in extra_channels:
        if kind == "zeros":
            extras.append(torch.zeros_like(weight[:, :1]))
        else:
            extras.append(weight.mean(dim=1, keepdim=True))
    return torch.cat([weight, *extras], dim=1)


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A flat name->tensor dict from a local ``.pth``/``.pt``/``.bin`` or ``.safetensors`` file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: backbone weights file not found")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:  # pragma: no cover - safetensors ships with timm
            raise CheckpointError(f"{path}: reading .safetensors needs the 'safetensors' package") from None
        try:
            return load_file(str(path))
        except Exception as exc:
            raise CheckpointError(f"{path}: unreadable safetensors file ({exc})") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a loadable weights file ({type(exc).__name__})") from None
    for wrapper in ("state_dict", "model", "state_dict_ema"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: not a state_dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}
