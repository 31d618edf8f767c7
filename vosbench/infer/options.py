"""Inference options: one definition for ``vosbench infer``'s flags, a recipe's ``[inference]``
table and a ladder rung's ``infer`` table.

Every field of :class:`InferOptions` made with :func:`option` is an *inference option*: it has the
same name (``finetune_aug``; the flag is ``--finetune-aug``), type and validation in all three
places. The other fields are *run settings* of one command (device, overwrite, saved
probabilities, depth estimator), which a recipe or a rung does not carry.

Types are checked here (:func:`check_inference_options`, for values read from TOML); ranges are
checked once, by the config each option feeds (:class:`EngineConfig`, :class:`TTAConfig`,
:class:`FinetuneConfig`, the precision rule), which :meth:`InferOptions.resolve` builds at once.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vosbench.errors import ConfigError
from vosbench.precision import PRECISION_HELP

if TYPE_CHECKING:  # torch-heavy; imported where used, so the CLI builds its flags without torch
    from vosbench.precision import Numerics
    from vosbench.infer.engine import EngineConfig
    from vosbench.infer.finetune import FinetuneConfig
    from vosbench.infer.recipe import Recipe
    from vosbench.infer.tta import TTAConfig

# The cap is a guard for long videos; STM never evicts. At mem_every=5 a video of T frames reads
# at most floor((T-2)/5) + 1 permanent frames plus the temporary slot: the longest DAVIS-2017
# video (104 frames) needs 22, a YouTube-VOS video at 30 fps (<= 180 frames, objects joining on
# annotated frames, which are on the 5-frame schedule) needs 37, and at 6 fps (<= 36 frames) 8
# plus one per object joining off the schedule. 40 keeps every frame STM keeps on both datasets.
# Memory per frame and object at 854x480 (30x54 positions, 128 + 512 channels): 4.1 MB in fp32.
DEFAULT_MAX_MEM_FRAMES = 40



def option(default: Any, help: str) -> Any:
    """A field that is an inference option (see the module docstring)."""
    return field(default=default, metadata={"help": help})


@dataclass
class InferOptions:
    """Inference settings (a recipe's ``[inference]`` table fills the ones the caller leaves None)."""

    flip: bool = option(False, "Add horizontally flipped variants (TTA).")
    scales: tuple[float, ...] = option((1.0,), "TTA scales, e.g. 0.75,1.0,1.25 (default 1.0).")
    finetune_steps: int = option(0, "Online finetuning steps per video on the first frame (default 0 = off).")
    finetune_lr: float = option(1e-5, "Online finetuning learning rate (default 1e-5).")
    finetune_aug: float = option(
        1.0,
        "Strength of the finetuning pseudo-frames' augmentation: 1 = rotate 10°, scale ±10 %, shear 5°, "
        "shift 5 %, colour jitter 0.1 (default); 0.5 halves every range; 0 = copies of the first frame.",
    )
    mem_every: int = option(5, "Add every N-th frame to memory (default 5).")
    max_mem_frames: int = option(
        DEFAULT_MAX_MEM_FRAMES,
        f"Most memory frames read at once, previous frame included; the oldest non-first frame is "
        f"evicted beyond it (default {DEFAULT_MAX_MEM_FRAMES}: STM keeps every frame, and so does "
        f"{DEFAULT_MAX_MEM_FRAMES} on DAVIS-2017 and YouTube-VOS lengths; a lower cap saves ~4 MB per frame "
        f"and object at 480p in fp32).",
    )
    precision: str = option("auto", PRECISION_HELP)
    # run settings (not inference options)
    device: str = "auto"
    overwrite: bool = False
    save_probs: bool = False
    depth_estimator: str | None = None
    given: str | None = None  # "first" | "first-appearance"; None: by layout (vosbench.infer.run)
    offload_state: bool = False  # hf: members: session state and frames in CPU memory (vosbench.infer.hf_video)

    @classmethod
    def resolve(cls, recipe: Recipe | None = None, **given: object) -> InferOptions:
        """Defaults <- recipe ``[inference]`` <- ``given`` (entries that are None are ignored).

        ``given`` may hold inference options and run settings; every value is checked.
        """
        values: dict[str, object] = dict(recipe.inference) if recipe else {}
        values.update({k: v for k, v in given.items() if v is not None})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"unknown inference option '{unknown[0]}' (known: {', '.join(inference_option_names())})")
        settings = {k: v for k, v in values.items() if k in inference_option_names()}
        values.update(check_inference_options(settings, "inference option"))
        options = cls(**values)  # type: ignore[arg-type]
        options.validate()
        return options

    def validate(self) -> InferOptions:
        """Check every value's range (each config checks its own)."""
        self.engine(), self.tta(), self.finetune()
        return self

    def engine(self, numerics: Numerics | None = None) -> EngineConfig:
        """The engine's config; ``numerics``: the run's, resolved once at its edge for inference."""
        from vosbench.infer.engine import EngineConfig

        precision = numerics.precision if numerics is not None else self.precision
        return EngineConfig(mem_every=self.mem_every, max_mem_frames=self.max_mem_frames,
                            precision=precision, numerics=numerics).validate()

    def tta(self) -> TTAConfig:
        from vosbench.infer.tta import TTAConfig

        return TTAConfig(flip=self.flip, scales=tuple(self.scales)).validate()

    def finetune(self, numerics: Numerics | None = None) -> FinetuneConfig:
        """The online finetuning's config; ``numerics``: resolved once at the run's edge for training."""
        from vosbench.infer.finetune import FinetuneConfig

        precision = numerics.precision if numerics is not None else self.precision
        cfg = FinetuneConfig(steps=self.finetune_steps, lr=self.finetune_lr, precision=precision, numerics=numerics)
        s = self.finetune_aug
        if not (s >= 0 and math.isfinite(s)):
            raise ConfigError(f"finetune augmentation strength must be >= 0 and finite (--finetune-aug), got {s}")
        if s != 1.0:  # scale every range of the default deformation and colour jitter
            d = cfg.deform
            lo, hi = d.scale
            cfg = dataclasses.replace(cfg, color=cfg.color * s, deform=dataclasses.replace(
                d, rotate=d.rotate * s, scale=(1 - (1 - lo) * s, 1 + (hi - 1) * s), shear=d.shear * s,
                translate=d.translate * s, elastic_alpha=d.elastic_alpha * s))
        return cfg.validate()


def inference_fields() -> tuple[dataclasses.Field, ...]:
    """The fields of :class:`InferOptions` that are inference options, in declaration order."""
    return tuple(f for f in dataclasses.fields(InferOptions) if "help" in f.metadata)


def inference_option_names() -> tuple[str, ...]:
    return tuple(f.name for f in inference_fields())


def _number(value: Any, integer: bool) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if integer else isinstance(value, (int, float))


def _check_value(f: dataclasses.Field, value: Any, where: str) -> Any:
    """``value`` converted to the field's type, or a ConfigError naming ``where`` and the option."""
    default = f.default
    ok = True
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = _number(value, integer=True)
    elif isinstance(default, float):
        ok = _number(value, integer=False)
        value = float(value) if ok else value
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, tuple):  # scales: a non-empty list of numbers
        ok = isinstance(value, (list, tuple)) and bool(value) and all(_number(v, integer=False) for v in value)
        value = tuple(float(v) for v in value) if ok else value
    if not ok:
        kind = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
            type(default), "a non-empty list of numbers")
        raise ConfigError(f"{where}: {f.name} must be {kind}, got {value!r}")
    return value


def check_inference_options(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Check names and types of inference options read from a recipe, a ladder or the CLI.

    Returns the values converted (lists of scales to tuples, integers to floats where a number
    is meant). Ranges are checked when the options are used (:meth:`InferOptions.validate`).
    """
    fields = {f.name: f for f in inference_fields()}
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"{where}: unknown inference option '{key}' (known: {', '.join(fields)})")
        out[key] = _check_value(fields[key], value, where)
    return out


def validate_inference_options(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """:func:`check_inference_options` plus the range checks, each message prefixed with ``where``."""
    checked = check_inference_options(values, where)
    try:
        InferOptions(**checked).validate()
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return checked
