"""Ensemble recipes: ``--ensemble a.pt,b.pt`` or a TOML file (format in docs/model-api.md).

A recipe names its member checkpoints (with optional weights) and, optionally, inference
options (``[inference]``: any of :mod:`vosbench.infer.options`, the same names as ``vosbench
infer``'s flags) that command-line flags override.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vosbench.errors import ConfigError
from vosbench.infer.options import validate_inference_options
from vosbench.tomlcompat import tomllib


@dataclass(frozen=True)
class MemberSpec:
    """One ensemble member: a checkpoint path (or ``hf:<hub id or folder>``) and its (unnormalised) weight."""

    checkpoint: Path
    weight: float = 1.0

    @property
    def hf_reference(self) -> str | None:
        """The hub id or folder of an ``hf:`` member (:mod:`vosbench.infer.hf_video`), else None."""
        from vosbench.infer.hf_video import hf_reference

        return hf_reference(self.checkpoint)

    @property
    def spec(self) -> str:
        return str(self.checkpoint)


def member_path(text: str, base: Path | None = None) -> Path:
    """A member's path as written: ``~`` expanded, relative paths against ``base`` (a recipe's
    folder); ``hf:REF`` keeps a hub id and resolves a folder the same way."""
    from vosbench.infer.hf_video import HF_PREFIX, hf_reference, resolve_reference

    ref = hf_reference(text)
    if ref is not None:
        return Path(HF_PREFIX + resolve_reference(ref, base)) if ref else Path(text)
    path = Path(text).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    return path


@dataclass
class Recipe:
    """What to ensemble and how to infer (``inference`` holds only the keys the recipe set)."""

    members: list[MemberSpec]
    name: str = ""
    description: str = ""
    inference: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None

    def normalised_weights(self) -> list[float]:
        return normalise_weights([m.weight for m in self.members])


def normalise_weights(weights: list[float]) -> list[float]:
    """``weights`` (finite, > 0) divided by their sum, without overflow: scaled by the largest
    first, so weights of 1e308 sum to 1 like weights of 1."""
    top = max(weights)
    scaled = [w / top for w in weights]
    total = sum(scaled)
    return [s / total for s in scaled]


def _weight(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: weight must be a number, got {value!r}")
    if not (value > 0 and math.isfinite(value)):
        raise ConfigError(f"{where}: weight must be > 0 and finite, got {value}")
    return float(value)


def _names_something(text: str) -> bool:
    """An existing path, or an ``hf:`` spec naming an existing folder or a hub id (``hf:org/name``)."""
    from vosbench.infer.hf_video import hf_reference, is_hub_id

    ref = hf_reference(text)
    if ref is None:
        return Path(text).expanduser().exists()
    return Path(ref).expanduser().exists() or is_hub_id(ref)


def _split_weight(part: str) -> tuple[str, float]:
    """``PATH`` or ``PATH:WEIGHT`` -> (path, weight): the text after the last colon is a weight only
    where ``part`` is not itself an existing path, the text is a number, and the path before it
    exists as given (a folder named ``run-12:30`` is that folder, not ``run-12`` with weight 30)."""
    head, sep, tail = part.rpartition(":")
    if not sep or not head or _names_something(part):
        return part, 1.0
    try:
        weight = float(tail)
    except ValueError:
        return part, 1.0
    if not _names_something(head):
        return part, 1.0  # "not found" then names the whole text
    return head, _weight(weight, f"--ensemble {part}")


def load_recipe(path: str | os.PathLike) -> Recipe:
    """Parse and validate a recipe TOML; relative checkpoints resolve against its folder."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: recipe not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read recipe ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None
    unknown = sorted(set(data) - {"recipe", "members", "inference"})
    if unknown:
        raise ConfigError(f"{path}: unknown section '{unknown[0]}' (expected recipe, members, inference)")
    head = data.get("recipe", {})
    if not isinstance(head, dict):
        raise ConfigError(f"{path}: [recipe] must be a table")
    raw_members = data.get("members")
    if not isinstance(raw_members, list) or not raw_members:
        raise ConfigError(f"{path}: needs at least one [[members]] entry with a checkpoint")
    members = []
    for i, entry in enumerate(raw_members):
        where = f"{path}: members[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table")
        extra = sorted(set(entry) - {"checkpoint", "weight", "name"})
        if extra:
            raise ConfigError(f"{where}: unknown key '{extra[0]}' (expected checkpoint, weight)")
        ckpt = entry.get("checkpoint")
        if not isinstance(ckpt, str) or not ckpt:
            raise ConfigError(f"{where}: 'checkpoint' must be a path string")
        members.append(MemberSpec(member_path(ckpt, path.parent), _weight(entry.get("weight", 1.0), where)))
    inference = data.get("inference", {})
    if not isinstance(inference, dict):
        raise ConfigError(f"{path}: [inference] must be a table")
    inference = validate_inference_options(inference, f"{path}: [inference]")
    return Recipe(
        members=members,
        name=str(head.get("name", path.stem)),
        description=str(head.get("description", "")),
        inference=inference,
        source=path,
    )


def parse_ensemble(spec: str | os.PathLike) -> Recipe:
    """A recipe from ``--ensemble``: a ``.toml`` recipe, or ``PATH[:WEIGHT],PATH[:WEIGHT],...``."""
    text = str(spec).strip()
    if text.lower().endswith(".toml"):
        return load_recipe(text)
    members = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        path, weight = _split_weight(part)
        members.append(MemberSpec(member_path(path), weight))
    if not members:
        raise ConfigError("--ensemble needs at least one checkpoint (a,b,... or a recipe .toml)")
    return Recipe(members=members, name="ensemble" if len(members) > 1 else members[0].checkpoint.stem)
