"""Training configuration: TOML files read into dataclasses, dotted ``key=value`` overrides.

A config has the sections ``[model]``, ``[data]`` (with optional ``[[data.sources]]`` for a
weighted mix), ``[augment]``, ``[curriculum]``, ``[optim]`` and ``[train]``; every key has a default
so a file only names what differs. Unknown keys raise :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vosbench.errors import ConfigError
from vosbench.fsutil import atomic_write_text
from vosbench.precision import PRECISIONS
from vosbench.tomlcompat import tomllib

STAGES = ("static", "video")
LR_SCHEDULES = ("step", "cosine")
SOURCE_KINDS = ("davis", "youtube", "static")


@dataclass
class ModelSection:
    """Which network: a preset name from :mod:`vosbench.models` plus field overrides."""

    preset: str = "stm-tiny"
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class SourceSection:
    """One dataset in the weighted mix; empty ``root``/``split`` fall back to ``[data]``'s."""

    kind: str = "davis"  # davis | youtube | static
    root: str = ""
    split: str = ""
    weight: float = 1.0


@dataclass
class DataSection:
    """Where samples come from and their shape."""

    stage: str = "video"  # static (pretraining on deformed images) | video (main training)
    root: str = ""  # default dataset root; `vosbench train --data` sets it
    split: str = "train"
    resolution: str = "480p"
    sources: list[SourceSection] = field(default_factory=list)  # empty = one `davis` source at root
    crop: tuple[int, int] = (384, 640)  # H, W of a training sample
    short_side: tuple[int, int] = (384, 1080)  # random short-side resize range before cropping
    max_objects: int = 3  # object slots per sample (padded, with `valid` flags)
    clip_frames: int = 3
    samples_per_epoch: int = 1000
    workers: int = 0  # DataLoader worker processes

    def fitted_to_frames(self, frame_short_side: int) -> DataSection:
        """This section for frames whose short side is ``frame_short_side`` pixels: where they are
        smaller than the crop's short side, ``crop`` and ``short_side`` shrink by the same factor
        (frame short side / crop short side), so training runs at the frames' own resolution
        instead of upscaling them. The crop's sides are floored to multiples of the models' stride
        (16, at least 16), so a crop never exceeds the resized frame; ``short_side`` is rounded.
        Frames at least the crop's size leave the section unchanged (the same object).

        Crop 384x640, short side [384, 1080], frames of 96 px -> crop 96x160, short side [96, 270].
        """
        from vosbench.padding import STRIDE

        crop_short = min(self.crop)
        if frame_short_side < 1:
            raise ValueError(f"frame short side must be >= 1, got {frame_short_side}")
        if frame_short_side >= crop_short:
            return self
        crop = tuple(max(STRIDE, c * frame_short_side // crop_short // STRIDE * STRIDE) for c in self.crop)
        # round half up, in integers: s * frame / crop_short
        short = tuple(max(1, (2 * s * frame_short_side + crop_short) // (2 * crop_short)) for s in self.short_side)
        return dataclasses.replace(self, crop=crop, short_side=short)  # type: ignore[arg-type]


@dataclass
class AugmentSection:
    """Random augmentation ranges (per-frame deformation, clip-level flip and colour)."""

    flip: bool = True
    rotate: float = 15.0
    scale: tuple[float, float] = (0.95, 1.05)
    shear: float = 10.0
    translate: float = 0.0
    elastic_alpha: float = 0.0  # pixels; static stage uses a few pixels
    elastic_sigma: float = 8.0
    brightness: float = 0.1
    contrast: float = 0.1
    saturation: float = 0.1
    hue: float = 0.02


@dataclass
class CurriculumSection:
    """Maximum frame skip between sampled frames, as a function of the epoch.

    Grows linearly from ``start_skip`` to ``end_skip`` over ``ramp_epochs`` (D-STM: 0 → 25), then
    stays. SCM §2.3's training strategy is one schedule: in the last ``final_epochs`` epochs (when
    ``final_skip`` ≥ 0) the maximum skip drops to ``final_skip`` and the spatial prior takes the
    model's own previous prediction instead of the ground truth.
    """

    start_skip: int = 0
    end_skip: int = 25
    ramp_epochs: int = 0
    final_skip: int = -1
    final_epochs: int = 0


@dataclass
class OptimSection:
    """Adam; the learning rate follows ``schedule``.

    ``step`` (the papers'): ``lr`` times ``lr_decay`` for each of ``lr_decay_epochs`` reached.
    ``cosine``: from ``lr`` down to ``lr * min_lr_ratio`` along a half cosine over the run's steps.
    Either way the first ``warmup_steps`` steps ramp linearly up to the schedule's value.
    """

    lr: float = 1e-5
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    schedule: str = "step"  # step | cosine
    lr_decay: float = 0.5
    lr_decay_epochs: list[int] = field(default_factory=list)
    min_lr_ratio: float = 0.0  # cosine: the last step's lr as a share of lr
    warmup_steps: int = 0  # linear warm-up from lr/warmup_steps
    grad_clip: float = 1.0  # max global gradient norm; 0 = off


@dataclass
class TrainSection:
    """Length, batch, precision, initial weights and checkpointing."""

    epochs: int = 150
    batch_size: int = 4  # global (split across DDP workers and accumulate micro-steps; need not divide)
    accumulate: int = 1  # gradient-accumulation micro-steps per optimizer step (vosbench.train.batches)
    seed: int = 0
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (vosbench.precision; auto: bf16 where it is native)
    init_checkpoint: str = ""  # start from these weights (e.g. the pretraining stage's last.pt)
    init_strict: bool = False  # true: init_checkpoint must be this architecture; false: load what matches
    allow_random_init: bool = False  # true: backbones may start random (tiny CPU configs; --allow-random-init)
    save_every: int = 500  # steps between step-<N>.pt checkpoints
    keep_checkpoints: int = 3  # step-<N>.pt files kept (the newest); last.pt is always kept
    log_every: int = 10  # steps between appends to log.csv
    tensorboard: bool = False
    threads: int = 0  # torch CPU threads per process; 0 = torch's default


@dataclass(frozen=True)
class Interval:
    """An allowed range for a numeric config value: finite, within [lo, hi] (an end excluded when open)."""

    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = False

    def problem(self, value: float) -> str | None:
        """What is wrong with ``value`` ("must be ..."), or None."""
        if not math.isfinite(value):
            return f"must be a finite number, got {value}"
        if (value > self.lo if self.lo_open else value >= self.lo) and (value < self.hi if self.hi_open else value <= self.hi):
            return None
        if self.hi == math.inf:
            return f"must be {'>' if self.lo_open else '>='} {_num(self.lo)}, got {value}"
        if self.lo == -math.inf:
            return f"must be {'<' if self.hi_open else '<='} {_num(self.hi)}, got {value}"
        return (f"must be in {'(' if self.lo_open else '['}{_num(self.lo)}, {_num(self.hi)}{')' if self.hi_open else ']'}, "
                f"got {value}")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


POSITIVE, NON_NEGATIVE, AT_LEAST_1 = Interval(0, lo_open=True), Interval(0), Interval(1)
FRACTION = Interval(0, 1)

# Every numeric config value and its allowed range (lists and pairs: each element); checked in
# TrainConfig.validate, which adds the checks that relate two values (min <= max).
RANGES: dict[str, Interval] = {
    "data.crop": Interval(16),
    "data.short_side": AT_LEAST_1,
    "data.max_objects": AT_LEAST_1,
    "data.clip_frames": Interval(2),
    "data.samples_per_epoch": AT_LEAST_1,
    "data.workers": NON_NEGATIVE,
    "augment.rotate": Interval(0, 180),  # degrees, max absolute
    "augment.scale": POSITIVE,
    "augment.shear": Interval(0, 90, hi_open=True),  # degrees
    "augment.translate": Interval(0, 1, hi_open=True),  # fraction of the size
    "augment.elastic_alpha": NON_NEGATIVE,
    "augment.elastic_sigma": POSITIVE,
    "augment.brightness": FRACTION,  # factors in [1 - x, 1 + x]
    "augment.contrast": FRACTION,
    "augment.saturation": FRACTION,
    "augment.hue": Interval(0, 0.5),  # fraction of a turn
    "curriculum.start_skip": NON_NEGATIVE,
    "curriculum.end_skip": NON_NEGATIVE,
    "curriculum.ramp_epochs": NON_NEGATIVE,
    "curriculum.final_skip": Interval(-1),  # -1: no final phase
    "curriculum.final_epochs": NON_NEGATIVE,
    "optim.lr": POSITIVE,
    "optim.betas": Interval(0, 1, hi_open=True),
    "optim.weight_decay": NON_NEGATIVE,
    "optim.lr_decay": POSITIVE,
    "optim.lr_decay_epochs": NON_NEGATIVE,
    "optim.min_lr_ratio": FRACTION,
    "optim.warmup_steps": NON_NEGATIVE,
    "optim.grad_clip": NON_NEGATIVE,  # 0 = off
    "train.epochs": AT_LEAST_1,
    "train.batch_size": AT_LEAST_1,
    "train.accumulate": AT_LEAST_1,
    "train.seed": Interval(0, 2**32 - 1),  # numpy's seed range
    "train.save_every": AT_LEAST_1,
    "train.keep_checkpoints": NON_NEGATIVE,
    "train.log_every": AT_LEAST_1,
    "train.threads": NON_NEGATIVE,
}


def _dotted(obj: Any, key: str) -> Any:
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass
class TrainConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    augment: AugmentSection = field(default_factory=AugmentSection)
    curriculum: CurriculumSection = field(default_factory=CurriculumSection)
    optim: OptimSection = field(default_factory=OptimSection)
    train: TrainSection = field(default_factory=TrainSection)

    # ---------------------------------------------------------------- conversion
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, origin: str = "config") -> TrainConfig:
        cfg = _build(cls, d, "", origin)
        cfg.validate(origin)
        return cfg

    def validate(self, origin: str = "config") -> None:
        """Check value ranges; raise :class:`ConfigError` naming the key."""

        def bad(key: str, msg: str) -> ConfigError:
            return ConfigError(f"{origin}: {key} {msg}")

        if self.data.stage not in STAGES:
            raise bad("data.stage", f"must be one of {', '.join(STAGES)}, got {self.data.stage!r}")
        for i, s in enumerate(self.data.sources):
            if s.kind not in SOURCE_KINDS:
                raise bad(f"data.sources[{i}].kind", f"must be one of {', '.join(SOURCE_KINDS)}, got {s.kind!r}")
            problem = POSITIVE.problem(s.weight)
            if problem:
                raise bad(f"data.sources[{i}].weight", problem)
        if self.train.precision not in PRECISIONS:
            raise bad("train.precision", f"must be one of {', '.join(PRECISIONS)}, got {self.train.precision!r}")
        if self.optim.schedule not in LR_SCHEDULES:
            raise bad("optim.schedule", f"must be one of {', '.join(LR_SCHEDULES)}, got {self.optim.schedule!r}")
        for key, interval in RANGES.items():
            value = _dotted(self, key)
            items = list(enumerate(value)) if isinstance(value, (list, tuple)) else [(None, value)]
            for i, v in items:
                problem = interval.problem(v)
                if problem:
                    raise bad(key if i is None else f"{key}[{i}]", problem)
        ordered = {"data.short_side": self.data.short_side, "augment.scale": self.augment.scale}
        for key, (lo, hi) in ordered.items():
            if lo > hi:
                raise bad(key, f"must be [min, max] with min <= max, got {[lo, hi]}")
        if self.data.short_side[0] < min(self.data.crop):
            raise bad("data.short_side", f"must be [min, max] with min >= the crop's short side {min(self.data.crop)} "
                      f"(a frame resized smaller than data.crop gives empty samples), got {list(self.data.short_side)}")

    def to_toml(self) -> str:
        return _to_toml(self.to_dict())


# --------------------------------------------------------------------------- loading


def load_config(path: str | os.PathLike, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Read a TOML config and apply ``key=value`` overrides (dotted keys, TOML values)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    raw = apply_overrides(raw, overrides)
    return TrainConfig.from_dict(raw, origin=str(path))


def parse_value(text: str) -> Any:
    """A TOML value (``1e-4``, ``true``, ``[192, 320]``, ``"x"``); bare words are strings."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


CLEAR = "none"  # `--set KEY=none` on an optional key removes it (see apply_overrides)


def _optional_key(parts: list[str]) -> bool:
    """Whether a dotted key is optional: its default is empty ("" or none), or it is a model override
    (removing one leaves the preset's value)."""
    if len(parts) > 2 and parts[:2] == ["model", "overrides"]:
        return True
    section = {f.name: f for f in dataclasses.fields(TrainConfig)}.get(parts[0])
    if section is None or len(parts) != 2:
        return False
    fields = {f.name: f for f in dataclasses.fields(section.default_factory())}  # type: ignore[misc]
    f = fields.get(parts[1])
    return f is not None and f.default in ("", None)


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Return a copy of ``raw`` with each ``a.b.c=value`` set (unknown keys are caught later).

    ``a.b.c=none`` on an optional key (empty default, or a model override) removes the key, so it
    takes its default: ``train.init_checkpoint=none`` starts without a checkpoint,
    ``model.overrides.backbone_weights=none`` drops the config's weights. Elsewhere ``none`` is the
    word itself (``train.precision=none`` is then an unknown precision).
    """
    out = _deepcopy(raw)
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. optim.lr=1e-4")
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"--set {item!r}: {p!r} is not a section")
            node = nxt
        if value.strip() == CLEAR and _optional_key(parts):
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = parse_value(value.strip())
    return out


def check_override(key: str, value: Any, origin: str = "override") -> Any:
    """Check one dotted key and its (TOML) value against the config's schema, as ``--set`` and a
    ladder rung's ``set`` table give them; returns the converted value.

    Keys under a free-form table (``model.overrides.*``) are checked later, by the model preset.
    Ranges that depend on other keys are checked when the whole config is built.
    """
    node: Any = TrainConfig
    parts = key.split(".")
    for i, part in enumerate(parts):
        names = [f.name for f in dataclasses.fields(node)]
        if part not in names:
            section = ".".join(parts[:i]) or "top level"
            raise ConfigError(f"{origin}: unknown config key '{key}' (known in {section}: {', '.join(names)})")
        hint = typing.get_type_hints(node)[part]
        rest = ".".join(parts[i + 1:])
        if not rest:
            return _convert(hint, value, key, origin)
        if typing.get_origin(hint) is dict:
            return value
        if not dataclasses.is_dataclass(hint):
            raise ConfigError(f"{origin}: '{'.'.join(parts[:i + 1])}' is not a section (in '{key}')")
        node = hint
    return value


def _deepcopy(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _deepcopy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deepcopy(v) for v in d]
    return d


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _convert(tp: Any, value: Any, key: str, origin: str) -> Any:
    """Check/convert one value against a type hint."""
    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{origin}: {key} must be {expected}, got {value!r}")

    org = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise bad("a table")
        return _build(tp, value, key + ".", origin)
    if org in (list,):
        if not isinstance(value, list):
            raise bad("a list")
        return [_convert(args[0], v, f"{key}[{i}]", origin) for i, v in enumerate(value)]
    if org is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise bad(f"a list of {len(args)} values")
        return tuple(_convert(a, v, f"{key}[{i}]", origin) for i, (a, v) in enumerate(zip(args, value)))
    if org in (dict,):
        if not isinstance(value, dict):
            raise bad("a table")
        return dict(value)
    if org in (typing.Union, types.UnionType):
        for a in args:
            try:
                return _convert(a, value, key, origin)
            except ConfigError:
                continue
        raise bad(" or ".join(_type_name(a) for a in args))
    if tp is bool:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if tp is Any:
        return value
    raise TypeError(f"unsupported config type {tp!r} for {key}")


def _build(cls: type, d: dict[str, Any], prefix: str, origin: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for k in d:
        if k not in names:
            raise ConfigError(f"{origin}: unknown config key '{prefix}{k}' (known in this section: {', '.join(names)})")
    kwargs = {k: _convert(hints[k], v, prefix + k, origin) for k, v in d.items()}
    return cls(**kwargs)


# --------------------------------------------------------------------------- writing


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _toml_key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else _toml_value(k)


def _to_toml(d: dict[str, Any]) -> str:
    """Write the (two-level) config dict; lists of tables become ``[[section.key]]``."""
    lines: list[str] = []
    for section, body in d.items():
        lines.append(f"[{section}]")
        tables: list[tuple[str, Any]] = []
        for k, v in body.items():
            if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
                tables.append((k, v))
            else:
                lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
        for k, items in tables:
            for item in items:
                lines.append("")
                lines.append(f"[[{section}.{k}]]")
                lines.extend(f"{_toml_key(ik)} = {_toml_value(iv)}" for ik, iv in item.items())
        lines.append("")
    return "\n".join(lines)


def write_config(path: str | os.PathLike, cfg: TrainConfig) -> None:
    """Write the resolved config as TOML, atomically."""
    atomic_write_text(path, cfg.to_toml())
