"""Model configuration: one dataclass tree from which every preset and ablation rung is built.

Top-level fields are the switches the papers ablate (backbone, spatial prior, ASPP, refine, depth,
loss mix); sub-configs group the knobs of one component each. ``to_dict``/``from_dict`` round-trip
through plain Python types so a config can live inside a checkpoint loaded with
``torch.load(weights_only=True)`` and inside TOML files.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from vosbench.errors import ConfigError


@dataclass
class LossConfig:
    """Weights of the loss terms (0 switches a term off).

    ``ce``: cross-entropy on the final soft-aggregated logits; ``coarse_ce``: cross-entropy on the
    pre-refine logits (used only when the refine module is on); ``iou``: soft IoU loss on the refine
    output (SCM); ``lovasz``: Lovász-softmax on the final output (D-STM).
    """

    ce: float = 1.0
    coarse_ce: float = 1.0
    iou: float = 0.0
    lovasz: float = 0.0
    ignore_index: int = 255


@dataclass
class ASPPConfig:
    """Atrous spatial pyramid pooling after the memory read (SCM §2.2, D-STM ASPP)."""

    rates: tuple[int, ...] = (2, 4, 8)
    image_pool: bool = True


@dataclass
class DecoderConfig:
    """STM refinement decoder: ``channels`` is STM's ``mdim`` (256 in the paper)."""

    channels: int = 256


@dataclass
class RefineConfig:
    """BASNet-style refine module (SCM §2.2): ``levels`` down/up stages of ``channels`` width."""

    channels: int = 32
    levels: int = 3
    use_image: bool = True


@dataclass
class SpatialConfig:
    """Spatial constraint module (SCM §2.1): kernel of the prior conv."""

    kernel_size: int = 3


@dataclass
class MemoryReadConfig:
    """Memory read: ``chunk_size`` memory positions per block (None = one fused attention call)."""

    chunk_size: int | None = None


@dataclass
class ModelConfig:
    """Everything needed to build a :class:`~vosbench.models.network.VOSModel`."""

    name: str = "custom"
    backbone: str = "resnet50"
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)  # extra timm.create_model arguments
    backbone_weights: str | None = None
    freeze_bn: bool = True
    key_dim: int = 128
    value_dim: int = 512
    spatial_prior: bool = False
    aspp: bool = False
    refine: bool = False
    depth: bool = False
    loss: LossConfig = field(default_factory=LossConfig)
    aspp_cfg: ASPPConfig = field(default_factory=ASPPConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    refine_cfg: RefineConfig = field(default_factory=RefineConfig)
    spatial: SpatialConfig = field(default_factory=SpatialConfig)
    memory: MemoryReadConfig = field(default_factory=MemoryReadConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples become lists) for checkpoints and TOML."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`ConfigError` naming the key."""
        if not isinstance(data, dict):
            raise ConfigError(f"model config must be a table/dict, got {type(data).__name__}")
        return apply_overrides(cls(), data)

    def replace(self, **overrides: Any) -> ModelConfig:
        """A copy with overrides applied.

        Nested fields: ``loss={"lovasz": 1}``, ``**{"loss.lovasz": 1}`` or ``loss__lovasz=1``.
        """
        return apply_overrides(self, overrides)

    def enabled_parts(self) -> list[str]:
        """Names of the optional parts switched on, in paper order."""
        parts = [name for name in ("depth", "spatial_prior", "aspp", "refine") if getattr(self, name)]
        return parts

    def validate(self) -> ModelConfig:
        """Check value ranges; returns self so it can be chained."""
        for name in ("key_dim", "value_dim"):
            if int(getattr(self, name)) <= 0:
                raise ConfigError(f"model config '{name}' must be positive, got {getattr(self, name)}")
        if self.decoder.channels <= 0 or self.refine_cfg.channels <= 0 or self.refine_cfg.levels < 1:
            raise ConfigError("model config decoder/refine channels must be positive and refine levels >= 1")
        if not self.aspp_cfg.rates or any(int(r) < 1 for r in self.aspp_cfg.rates):
            raise ConfigError(
                f"model config 'aspp_cfg.rates' must be positive ints, got {self.aspp_cfg.rates}"
            )
        if self.memory.chunk_size is not None and self.memory.chunk_size <= 0:
            raise ConfigError("model config 'memory.chunk_size' must be positive or null")
        if self.spatial.kernel_size % 2 != 1:
            raise ConfigError("model config 'spatial.kernel_size' must be odd")
        for name, value in dataclasses.asdict(self.loss).items():
            if name != "ignore_index" and value < 0:
                raise ConfigError(f"model config 'loss.{name}' must be >= 0, got {value}")
        return self


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _split_key(key: str) -> list[str]:
    return key.replace("__", ".").split(".")


def apply_overrides(obj: Any, overrides: dict[str, Any], prefix: str = "") -> Any:
    """Return a copy of dataclass ``obj`` with ``overrides`` applied, recursing into sub-configs.

    Keys may be nested dicts, dotted (``"loss.iou"``) or double-underscored (``loss__iou``).
    Unknown keys and wrongly typed values raise :class:`ConfigError` naming the full key.
    """
    fields = {f.name: f for f in dataclasses.fields(obj)}
    changes: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for raw_key, value in overrides.items():
        head, *rest = _split_key(str(raw_key))
        full = f"{prefix}{head}"
        if head not in fields:
            raise ConfigError(f"unknown model config key '{prefix}{raw_key}'")
        current = getattr(obj, head)
        if dataclasses.is_dataclass(current):
            if rest:
                nested.setdefault(head, {})[".".join(rest)] = value
            elif isinstance(value, dict):
                nested.setdefault(head, {}).update(value)
            elif dataclasses.is_dataclass(value) and type(value) is type(current):
                changes[head] = value
            else:
                raise ConfigError(f"model config key '{full}' needs a table/dict, got {value!r}")
        elif rest:
            raise ConfigError(f"unknown model config key '{prefix}{raw_key}'")
        else:
            changes[head] = _coerce(full, value, current, fields[head].type)
    for head, sub in nested.items():
        base = changes.get(head, getattr(obj, head))
        changes[head] = apply_overrides(base, sub, prefix=f"{prefix}{head}.")
    return dataclasses.replace(obj, **changes)


def _coerce(key: str, value: Any, current: Any, annotation: Any) -> Any:
    """Light type check/coercion against the field's current value and annotation."""
    ann = str(annotation)
    if value is None:
        if "None" in ann:
            return None
        raise ConfigError(f"model config key '{key}' cannot be null")
    if isinstance(current, bool) or ann == "bool":
        if isinstance(value, bool):
            return value
        raise ConfigError(f"model config key '{key}' must be true/false, got {value!r}")
    if ann.startswith("dict"):
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return dict(value)
        raise ConfigError(f"model config key '{key}' must be a table/dict, got {value!r}")
    if ann.startswith("tuple"):
        if isinstance(value, (list, tuple)) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            return tuple(value)
        raise ConfigError(f"model config key '{key}' must be a list of ints, got {value!r}")
    if ann.startswith("int"):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"model config key '{key}' must be an int, got {value!r}")
    if ann == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"model config key '{key}' must be a number, got {value!r}")
    if ann.startswith("str"):
        if isinstance(value, str):
            return value
        raise ConfigError(f"model config key '{key}' must be a string, got {value!r}")
    return value
