"""Checkpoints that rebuild their own model: config + weights (+ plain extras), loaded weights-only."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from vosbench.errors import CheckpointError, ConfigError
from vosbench.fsutil import atomic_path
from vosbench.models.config import ModelConfig
from vosbench.models.network import VOSModel

FORMAT = "vosbench-ckpt-1"
_RESERVED = ("format", "config", "state_dict")
# Fields that do not change the architecture (a checkpoint may be loaded with other values).
_NON_ARCH = ("name", "backbone_weights", "loss", "memory")


def _check_plain(key: str, value: Any) -> None:
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(f"{key}[{i}]", v)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"checkpoint extra '{key}' has a non-string key {k!r}")
            _check_plain(f"{key}.{k}", v)
        return
    raise TypeError(
        f"checkpoint extra '{key}' is a {type(value).__name__}; only tensors/numbers/strings/lists/dicts"
    )


def save_checkpoint(path: str | os.PathLike, model: VOSModel, **extra: Any) -> Path:
    """Write ``{"format", "config", "state_dict", **extra}`` atomically to ``path``; returns the path."""
    for key, value in extra.items():
        if key in _RESERVED:
            raise ValueError(f"checkpoint extra key '{key}' is reserved")
        _check_plain(key, value)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    obj = {"format": FORMAT, "config": model.config.to_dict(), "state_dict": state, **extra}
    path = Path(path)
    # through a Python file: a full disk is then an OSError (ENOSPC), not torch's opaque RuntimeError
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        writer = _RecordingWriter(fh)
        try:
            torch.save(obj, writer)
        except RuntimeError:
            if writer.error is not None:  # torch turns a failed write into "unexpected pos ..."
                raise writer.error from None
            raise
        fh.flush()
        os.fsync(fh.fileno())
    return path


class _RecordingWriter:
    """A file's ``write`` that remembers the OSError it raised: torch's zip writer swallows it
    (a disk filled mid-save, a file-size limit) and raises a RuntimeError without the cause."""

    def __init__(self, fh: Any):
        self._fh = fh
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self._fh.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self._fh.flush()


def architecture(config: ModelConfig) -> dict[str, Any]:
    """The part of a config that decides the network's parameters."""
    d = config.to_dict()
    for key in _NON_ARCH:
        d.pop(key, None)
    return d


def read_checkpoint(
    path: str | os.PathLike,
    map_location: str | torch.device = "cpu",
    expect: str | ModelConfig | None = None,
    mmap: bool = False,
) -> tuple[ModelConfig, dict[str, torch.Tensor], dict[str, Any]]:
    """The config, state_dict and extra entries stored in ``path``, without building the model.

    ``expect`` (a preset name or a config) makes a checkpoint of another architecture an error;
    ``mmap`` maps the tensors instead of reading them (enough to look at their shapes).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as exc:
        raise CheckpointError(
            f"{path}: not a vosbench checkpoint (unreadable: {type(exc).__name__})"
        ) from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a vosbench checkpoint (no '{FORMAT}' format tag)")
    try:
        config = ModelConfig.from_dict(obj["config"]).replace(backbone_weights=None)
    except (ConfigError, KeyError) as exc:
        raise CheckpointError(f"{path}: checkpoint config is invalid ({exc})") from None
    if expect is not None:
        _check_expected(path, config, expect)
    state = obj.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: checkpoint has no state_dict")
    return config, state, {k: v for k, v in obj.items() if k not in _RESERVED}


def load_checkpoint(
    path: str | os.PathLike,
    map_location: str | torch.device = "cpu",
    expect: str | ModelConfig | None = None,
) -> tuple[VOSModel, dict[str, Any]]:
    """Rebuild the model stored in ``path`` -> (model, extra entries).

    ``expect`` (a preset name or a config) makes a checkpoint of another architecture an error.
    """
    path = Path(path)
    config, state, extra = read_checkpoint(path, map_location, expect)
    model = VOSModel(config)
    own = model.state_dict()
    # BN step counters are not weights (checkpoints from FrozenBatchNorm2d models lack them).
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        detail = (
            f"missing '{missing[0]}'"
            if missing
            else f"unexpected '{unexpected[0]}'"
            if unexpected
            else f"'{wrong[0]}' is {tuple(state[wrong[0]].shape)}, model needs {tuple(own[wrong[0]].shape)}"
        )
        raise CheckpointError(f"{path}: weights do not match model '{config.name}' ({detail})")
    bad = next((k for k, v in state.items() if isinstance(v, torch.Tensor) and v.is_floating_point()
                and not bool(torch.isfinite(v).all())), None)
    if bad is not None:
        raise CheckpointError(f"{path}: weight '{bad}' holds NaN or inf values; the checkpoint is damaged "
                              "(or the training diverged)")
    model.load_state_dict(state, strict=False)
    model.to(map_location)
    return model, extra


def _check_expected(path: Path, config: ModelConfig, expect: str | ModelConfig) -> None:
    if isinstance(expect, str):
        if config.name != expect:
            raise CheckpointError(f"{path}: checkpoint is model '{config.name}', expected '{expect}'")
        return
    want, have = architecture(expect), architecture(config)
    if want != have:
        diff = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
        raise CheckpointError(
            f"{path}: checkpoint architecture '{config.name}' differs from the expected '{expect.name}' "
            f"(fields: {', '.join(diff)})"
        )
