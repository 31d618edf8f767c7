"""Named model presets (timm-style registry) and the one builder.

A preset is a function ``(**overrides) -> ModelConfig`` registered under a name; every ablation
rung of the papers is a preset or a preset plus overrides (``build_model("scm-tiny", spatial_prior=False)``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vosbench.errors import ConfigError
from vosbench.models.config import ModelConfig

if TYPE_CHECKING:
    from vosbench.models.network import VOSModel

PresetFn = Callable[..., ModelConfig]


@dataclass(frozen=True)
class PresetInfo:
    name: str
    fn: PresetFn
    description: str


_PRESETS: dict[str, PresetInfo] = {}


def register_preset(name: str, description: str = "") -> Callable[[PresetFn], PresetFn]:
    """Decorator registering ``fn(**overrides) -> ModelConfig`` under ``name``."""

    def wrap(fn: PresetFn) -> PresetFn:
        if name in _PRESETS:
            raise ValueError(f"model preset '{name}' registered twice")
        doc = description or ((fn.__doc__ or "").strip().splitlines() or [""])[0]
        _PRESETS[name] = PresetInfo(name, fn, doc)
        return fn

    return wrap


def _ensure_builtin() -> None:
    # The built-in presets register themselves on import; imported lazily to avoid a cycle.
    import vosbench.models.presets  # noqa: F401


def list_presets() -> list[str]:
    """Registered preset names, in registration order."""
    _ensure_builtin()
    return list(_PRESETS)


def preset_info(name: str) -> PresetInfo:
    """The registry entry for ``name`` (ConfigError if unknown)."""
    _ensure_builtin()
    try:
        return _PRESETS[name]
    except KeyError:
        known = ", ".join(_PRESETS)
        raise ConfigError(f"unknown model preset '{name}' (known: {known})") from None


def get_preset(name: str, **overrides: Any) -> ModelConfig:
    """The config of preset ``name`` with ``overrides`` applied."""
    cfg = preset_info(name).fn(**overrides)
    return cfg.validate()


def resolve_config(name_or_config: str | ModelConfig | dict, **overrides: Any) -> ModelConfig:
    """Accept a preset name, a ModelConfig or a config dict, apply overrides."""
    if isinstance(name_or_config, str):
        return get_preset(name_or_config, **overrides)
    if isinstance(name_or_config, dict):
        return ModelConfig.from_dict(name_or_config).replace(**overrides).validate()
    if isinstance(name_or_config, ModelConfig):
        return name_or_config.replace(**overrides).validate()
    raise ConfigError(f"expected a preset name or ModelConfig, got {type(name_or_config).__name__}")


def build_model(name_or_config: str | ModelConfig | dict, **overrides: Any) -> VOSModel:
    """Build a randomly initialised :class:`VOSModel` (backbone weights from ``backbone_weights`` if set)."""
    from vosbench.models.network import VOSModel

    return VOSModel(resolve_config(name_or_config, **overrides))
