"""Ladder configs (``ablations/<name>.toml``): rungs that each change the previous one.

::

    [ladder]
    name = "scm-cpu"
    data = "runs/data/small"          # dataset root (``--data`` overrides); relative to the CWD
    split = "val"                     # evaluation split
    features = ["Spatial prior", "ASPP", "Refine", "TTA"]   # checkmark-table columns

    [[rungs]]
    name = "Baseline (STM)"
    train_config = "configs/stm-tiny.toml"   # relative to the ladder file
    set = { "data.samples_per_epoch" = 160 } # training-config overrides: the keys `train --set` takes
    infer = { flip = false, scales = [1.0] } # inference options: the names of `infer`'s flags

    [[rungs]]
    name = "+Spatial constraint"
    set = { "model.preset" = "scm-tiny", "model.overrides.aspp" = false }
    features = ["Spatial prior"]             # columns this rung switches on

A rung inherits everything from the rung before it and applies its own changes: ``train_config``
replaces, ``set`` and ``infer`` update key by key, ``features`` adds (``drop_features`` removes).
``checkpoint = "path.pt"`` reuses a finished checkpoint instead of training; ``checkpoint =
"hf:facebook/sam2.1-hiera-tiny"`` (or ``hf:FOLDER``) runs a transformers video tracker, its cache
keyed by the model's weights (:func:`vosbench.infer.hf_video.hf_identity`).
``pretrain_config = "cfg.toml"`` (inherited; ``""`` stops it) gives the rung its own pretraining
stage: that config trained with the rung's ``model.*`` overrides (so the same network), whose last
checkpoint becomes the rung's ``train.init_checkpoint``; rungs with the same network share it.
``ensemble = ["+Spatial constraint"]`` (not inherited) averages this rung's model with the models
of the named earlier rungs at inference (equal weights), as in the SCM entry's last row.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vosbench.data.names import name_problem
from vosbench.errors import ConfigError
from vosbench.infer.options import validate_inference_options
from vosbench.infer.recipe import member_path
from vosbench.precision import check_precision
from vosbench.train.config import check_override
from vosbench.tomlcompat import tomllib

_LADDER_KEYS = {"name", "description", "data", "split", "resolution", "features", "device"}
_RUNG_KEYS = {"name", "train_config", "set", "infer", "features", "drop_features", "checkpoint", "ensemble",
              "pretrain_config"}
INIT_KEY = "train.init_checkpoint"
# the type of every value under [ladder] and [[rungs]] but the tables (set, infer); "names": a list of strings
_LADDER_TYPES = {"name": "str", "description": "str", "data": "str", "split": "str", "resolution": "str",
                 "device": "str", "features": "names"}
_RUNG_TYPES = {"name": "str", "train_config": "str", "pretrain_config": "str", "checkpoint": "str",
               "features": "names", "drop_features": "names", "ensemble": "names"}


@dataclass(frozen=True)
class RungSpec:
    """One rung, fully resolved (inheritance applied)."""

    name: str
    train_config: Path | None
    train_overrides: dict[str, Any]
    infer_options: dict[str, Any]
    features: tuple[str, ...]
    checkpoint: Path | None = None
    ensemble: tuple[str, ...] = ()  # earlier rungs whose models join this rung's at inference
    pretrain_config: Path | None = None  # this rung's own pretraining stage (see the module docstring)

    def pretraining(self) -> RungSpec | None:
        """The rung's pretraining stage as a training-only rung: its config with the rung's model."""
        if self.pretrain_config is None or self.checkpoint is not None:
            return None
        # the rung's model, and the precision `ablate --precision` set for every stage
        model = {k: v for k, v in self.train_overrides.items() if k.startswith("model.") or k == "train.precision"}
        return RungSpec(name=f"{self.name} (pretraining)", train_config=self.pretrain_config,
                        train_overrides=model, infer_options={}, features=())

    def starting_from(self, checkpoint: Path) -> RungSpec:
        """This rung with ``train.init_checkpoint`` set to ``checkpoint`` (its pretraining stage's)."""
        return dataclasses.replace(self, train_overrides={**self.train_overrides, INIT_KEY: str(checkpoint)},
                                   pretrain_config=None)


@dataclass(frozen=True)
class LadderConfig:
    name: str
    rungs: tuple[RungSpec, ...]
    features: tuple[str, ...] = ()
    data: Path | None = None
    split: str = "val"
    resolution: str = "480p"
    device: str = "auto"
    description: str = ""
    source: Path | None = field(default=None, compare=False)


def _check_keys(where: str, got: dict, allowed: set[str]) -> None:
    unknown = sorted(set(got) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")


def _check_types(where: str, got: dict, types: dict[str, str]) -> None:
    for key, kind in types.items():
        if key not in got:
            continue
        value = got[key]
        if kind == "str" and not isinstance(value, str):
            raise ConfigError(f"{where}: {key} must be a string, got {value!r}")
        if kind == "names" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise ConfigError(f"{where}: {key} must be a list of strings, got {value!r}")


def parse_ladder(raw: dict, source: Path | None = None) -> LadderConfig:
    """Build a :class:`LadderConfig` from parsed TOML, resolving rung inheritance."""
    where = str(source) if source else "ladder"
    _check_keys(where, raw, {"ladder", "rungs"})
    head = raw.get("ladder", {})
    if not isinstance(head, dict):
        raise ConfigError(f"{where}: [ladder] must be a table")
    _check_keys(f"{where} [ladder]", head, _LADDER_KEYS)
    _check_types(f"{where} [ladder]", head, _LADDER_TYPES)
    ladder_name = head.get("name", source.stem if source else "ladder")
    problem = name_problem(ladder_name)
    if problem is not None:  # it names the output folder runs/ablate/<name>
        raise ConfigError(f"{where} [ladder]: name {ladder_name!r} {problem}; a ladder name must be a plain name "
                          "(it names the folder runs/ablate/<name>)")
    rungs_raw = raw.get("rungs", [])
    if not rungs_raw:
        raise ConfigError(f"{where}: no [[rungs]]")
    if not isinstance(rungs_raw, list) or not all(isinstance(r, dict) for r in rungs_raw):
        raise ConfigError(f"{where}: rungs must be [[rungs]] tables")
    base = source.parent if source else Path.cwd()
    features = tuple(head.get("features", ()))

    def rel(p: str | None) -> Path | None:
        if p is None:
            return None
        path = Path(p)
        return path if path.is_absolute() else (base / path)

    rungs: list[RungSpec] = []
    train_config: Path | None = None
    overrides: dict[str, Any] = {}
    infer: dict[str, Any] = {}
    enabled: list[str] = []
    pretrain: Path | None = None
    names: set[str] = set()
    for i, r in enumerate(rungs_raw):
        rwhere = f"{where} rung {i + 1}"
        _check_keys(rwhere, r, _RUNG_KEYS)
        _check_types(rwhere, r, _RUNG_TYPES)
        name = r.get("name") or f"rung {i + 1}"
        if name in names:
            raise ConfigError(f"{rwhere}: duplicate rung name {name!r}")
        names.add(name)
        if "train_config" in r:
            train_config = rel(r["train_config"])
            if train_config is not None and not train_config.is_file():
                raise ConfigError(f"{rwhere}: training config {train_config} not found")
        if "pretrain_config" in r:
            pretrain = rel(r["pretrain_config"]) if r["pretrain_config"] else None
            if pretrain is not None and not pretrain.is_file():
                raise ConfigError(f"{rwhere}: pretraining config {pretrain} not found")
        own_set, own_infer = r.get("set", {}), r.get("infer", {})
        named = f"{where} rung {name!r}"
        if not isinstance(own_set, dict) or not isinstance(own_infer, dict):
            raise ConfigError(f"{named}: set and infer must be tables")
        for key, value in own_set.items():  # the keys and values `vosbench train --set` takes
            check_override(key, value, f"{named} set")
        # the options `vosbench infer` takes, under the same names
        overrides = {**overrides, **own_set}
        infer = {**infer, **validate_inference_options(own_infer, f"{named} infer")}
        for f in r.get("features", ()):
            if features and f not in features:
                raise ConfigError(f"{rwhere}: feature {f!r} is not a column of [ladder].features")
            if f not in enabled:
                enabled.append(f)
        for f in r.get("drop_features", ()):
            if f in enabled:
                enabled.remove(f)
        ensemble = r.get("ensemble", [])
        if not isinstance(ensemble, list) or not all(isinstance(e, str) for e in ensemble):
            raise ConfigError(f"{rwhere}: ensemble must be a list of earlier rung names")
        for e in ensemble:
            if e not in names or e == name:
                raise ConfigError(f"{rwhere}: ensemble names {e!r}, which is not an earlier rung")
        ckpt = member_path(r["checkpoint"], base) if r.get("checkpoint") is not None else None  # a path or hf:REF
        if train_config is None and ckpt is None:
            raise ConfigError(f"{rwhere}: needs a train_config (here or on an earlier rung) or a checkpoint")
        rungs.append(
            RungSpec(
                name=name,
                train_config=train_config,
                train_overrides=copy.deepcopy(overrides),
                infer_options=copy.deepcopy(infer),
                features=tuple(enabled),
                checkpoint=ckpt,
                ensemble=tuple(ensemble),
                pretrain_config=pretrain,
            )
        )
    data = head.get("data")
    return LadderConfig(
        name=ladder_name,
        description=head.get("description", ""),
        rungs=tuple(rungs),
        features=features,
        data=Path(data) if data else None,
        split=head.get("split", "val"),
        resolution=head.get("resolution", "480p"),
        device=head.get("device", "auto"),
        source=source,
    )


def with_precision(ladder: LadderConfig, precision: str | None) -> LadderConfig:
    """``ladder`` with every rung trained and inferred at ``precision`` (``ablate --precision``; it
    enters every step's cache key); None keeps each rung's own (its config's ``train.precision``)."""
    if precision is None:
        return ladder
    check_precision(precision)
    rungs = tuple(
        dataclasses.replace(r, train_overrides={**r.train_overrides, "train.precision": precision},
                            infer_options={**r.infer_options, "precision": precision})
        for r in ladder.rungs
    )
    return dataclasses.replace(ladder, rungs=rungs)


def load_ladder(path: str | os.PathLike) -> LadderConfig:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: ladder config not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None
    return parse_ladder(raw, path)
