"""Starting a run from another run's weights (``train.init_checkpoint``), fully or in part.

With ``train.init_strict = true`` the checkpoint must be this run's architecture. Otherwise every
tensor whose name and shape match is loaded, a backbone input conv that lacks (or has) the depth
channel is adapted (the depth filter starts as the mean of the RGB filters, as with ImageNet
weights), the new model's other tensors keep their initialisation (e.g. ASPP, refine, the spatial
prior when starting SCM from a trained STM), and checkpoint tensors the model has no place for are
dropped. Backbone tensors load only from a checkpoint of the same trunk (name and
``backbone_kwargs``). :meth:`InitPlan.table` lists what happened to each part of the network.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vosbench.errors import CheckpointError, ConfigError
from vosbench.models.config import ModelConfig
from vosbench.train.config import TrainSection

DEPTH_CHANNEL = 3  # input channels: RGB, depth (when used), then the memory encoder's two mask channels
BACKBONES = ("query_encoder.backbone.", "memory_encoder.backbone.")


@dataclass
class InitPlan:
    """What each tensor of the new model gets from the checkpoint."""

    source: str
    loaded: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)  # input convs with the depth channel added/removed
    initialised: list[str] = field(default_factory=list)  # the model's own initialisation is kept
    dropped: list[str] = field(default_factory=list)  # checkpoint tensors with no place in the model
    trained_on: dict | None = None  # the checkpoint's record of its training data (vosbench.data.kind)

    @property
    def complete(self) -> bool:
        return not (self.adapted or self.initialised or self.dropped)

    def backbones_loaded(self) -> bool:
        """Whether both backbones take (most of) their weights from the checkpoint."""
        return all(
            any(k.startswith(prefix) for k in self.loaded + self.adapted)
            and not any(k.startswith(prefix) for k in self.initialised)
            for prefix in BACKBONES
        )

    def table(self) -> str:
        """A text table, one row per part of the network: tensors loaded / adapted / initialised / dropped."""
        rows: dict[str, list[int]] = {}
        for column, keys in enumerate((self.loaded, self.adapted, self.initialised, self.dropped)):
            for key in keys:
                rows.setdefault(_part(key), [0, 0, 0, 0])[column] += 1
        header = ("part", "loaded", "adapted", "initialised", "dropped")
        width = max([len(header[0]), *map(len, rows)])
        lines = [f"init from {self.source}:", "  " + header[0].ljust(width) + "".join(f"  {h}" for h in header[1:])]
        for part, counts in rows.items():
            cells = "".join(f"  {c:>{len(h)}}" for c, h in zip(counts, header[1:]))
            lines.append("  " + part.ljust(width) + cells)
        return "\n".join(lines)


def _part(key: str) -> str:
    """``query_encoder.backbone`` / ``context`` ...: the part of the network a tensor belongs to."""
    parts = key.split(".")
    return ".".join(parts[:2]) if parts[0].endswith("_encoder") else parts[0]


def _weight(key: str) -> bool:
    return not key.endswith("num_batches_tracked")  # BN step counters are not weights


def plan_init(
    target: Mapping[str, torch.Size],
    source: Mapping[str, torch.Size],
    target_cfg: ModelConfig,
    source_cfg: ModelConfig,
    source_name: str,
) -> InitPlan:
    """Decide, from tensor names and shapes alone, what each tensor of the new model gets."""
    plan = InitPlan(source_name)
    depth_step = int(target_cfg.depth) - int(source_cfg.depth)  # +1: depth channel added, -1: removed
    # another trunk (resnet50 -> resnest101e) shares some BN names and shapes by chance: none of it loads
    same_trunk = (target_cfg.backbone, target_cfg.backbone_kwargs) == (source_cfg.backbone, source_cfg.backbone_kwargs)
    for key, shape in target.items():
        if not _weight(key):
            continue
        have = source.get(key) if same_trunk or not key.startswith(BACKBONES) else None
        if have is not None and tuple(have) == tuple(shape):
            plan.loaded.append(key)
        elif have is not None and depth_step and _depth_adaptable(key, tuple(have), tuple(shape), depth_step):
            plan.adapted.append(key)
        else:
            plan.initialised.append(key)
    taken = set(plan.loaded) | set(plan.adapted)
    plan.dropped = [k for k in source if _weight(k) and k not in taken]
    return plan


def _depth_adaptable(key: str, have: tuple[int, ...], want: tuple[int, ...], step: int) -> bool:
    return (
        key.startswith(BACKBONES)
        and len(have) == len(want) == 4
        and have[0] == want[0]
        and have[2:] == want[2:]
        and want[1] == have[1] + step
        and min(have[1], want[1]) >= DEPTH_CHANNEL
    )


def adapt_depth_channel(weight: torch.Tensor, step: int) -> torch.Tensor:
    """Insert (``step`` = 1) the depth filter (mean of the RGB filters) after RGB, or remove it (-1)."""
    rgb, rest = weight[:, :DEPTH_CHANNEL], weight[:, DEPTH_CHANNEL:]
    if step > 0:
        return torch.cat([rgb, rgb.mean(dim=1, keepdim=True), rest], dim=1)
    return torch.cat([rgb, rest[:, 1:]], dim=1)


def model_shapes(model_cfg: ModelConfig) -> dict[str, torch.Size]:
    """Tensor shapes of the model of ``model_cfg``, built on the meta device (no memory, no download)."""
    from vosbench.models.network import VOSModel

    with torch.device("meta"):
        return {k: v.shape for k, v in VOSModel(model_cfg.replace(backbone_weights=None)).state_dict().items()}


def check_init(
    source: str | os.PathLike, model_cfg: ModelConfig, *, strict: bool, producer: ModelConfig | None = None
) -> InitPlan:
    """Check an init checkpoint against the model of ``model_cfg`` without loading weights (preflight).

    ``producer``: the checkpoint does not exist yet; it will hold a model of this config (a ladder's
    pretraining stage), and ``source`` only names it.
    """
    from vosbench.models.checkpoint import architecture, read_checkpoint

    if producer is None:
        source_cfg, state, _ = read_checkpoint(source, expect=model_cfg if strict else None, mmap=True)
        shapes = {k: v.shape for k, v in state.items()}
    else:
        source_cfg, shapes = producer, model_shapes(producer)
        if strict and architecture(producer) != architecture(model_cfg):
            raise CheckpointError(
                f"{source}: will hold '{producer.name}', whose architecture differs from '{model_cfg.name}' "
                f"(train.init_strict)"
            )
    plan = plan_init(model_shapes(model_cfg), shapes, model_cfg, source_cfg, str(source))
    if not plan.loaded and not plan.adapted:
        raise CheckpointError(
            f"{source}: train.init_checkpoint shares no weights with model '{model_cfg.name}' "
            f"(it holds '{source_cfg.name}')"
        )
    return plan


def check_start(
    train: TrainSection, model_cfg: ModelConfig, *, allow_random_init: bool = False,
    producer: ModelConfig | None = None,
) -> InitPlan | None:
    """The checks on a new run's initial weights, before anything is built or written.

    Named ImageNet weights must fit the backbone; an init checkpoint must exist (or ``producer``
    will write it) and fit the model; and backbones that would start random (no ImageNet weights,
    no init checkpoint that fills them) are refused unless ``allow_random_init`` or
    ``train.allow_random_init``.
    """
    from vosbench.models.backbone import check_backbone_weights

    if model_cfg.backbone_weights:
        check_backbone_weights(model_cfg.backbone_weights, model_cfg.backbone)
    plan = None
    init = train.init_checkpoint
    if init:
        if producer is None and not Path(init).is_file():
            raise CheckpointError(f"{init}: train.init_checkpoint not found (train the previous stage first)")
        plan = check_init(init, model_cfg, strict=train.init_strict, producer=producer)
    if not (model_cfg.backbone_weights or allow_random_init or train.allow_random_init
            or (plan is not None and plan.backbones_loaded())):
        raise ConfigError(
            f"model '{model_cfg.name}' would train from random backbones: set model.backbone_weights "
            f"(e.g. timm:resnet50.tv_in1k or a local file), or pass --allow-random-init"
        )
    return plan


def load_init(model: torch.nn.Module, path: str | os.PathLike, model_cfg: ModelConfig, *, strict: bool) -> InitPlan:
    """Load ``path`` into ``model`` (in place) per the rules in the module docstring; returns the plan."""
    from vosbench.models.checkpoint import read_checkpoint

    source_cfg, state, extra = read_checkpoint(path, expect=model_cfg if strict else None)
    own = model.state_dict()
    plan = plan_init({k: v.shape for k, v in own.items()}, {k: v.shape for k, v in state.items()},
                     model_cfg, source_cfg, str(path))
    plan.trained_on = extra.get("trained_on")
    if strict and not plan.complete:
        first = (plan.initialised or plan.dropped or plan.adapted)[0]
        raise CheckpointError(f"{path}: weights do not match model '{model_cfg.name}' (train.init_strict; '{first}')")
    if not plan.loaded and not plan.adapted:
        raise CheckpointError(f"{path}: train.init_checkpoint shares no weights with model '{model_cfg.name}'")
    step = int(model_cfg.depth) - int(source_cfg.depth)
    new = {k: state[k] for k in plan.loaded}
    new.update({k: adapt_depth_channel(state[k], step) for k in plan.adapted})
    model.load_state_dict(new, strict=False)
    return plan
