"""Training checkpoints: model + config (via the models' ``save_checkpoint``) plus the training state.

The extra state holds only tensors, numbers, strings, lists and dicts, so the file loads with
``torch.load(weights_only=True)``. Writes are atomic: a failed save (e.g. a full disk) leaves the
previous file untouched.
"""

from __future__ import annotations

import errno
import logging
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vosbench.errors import CheckpointError
from vosbench.fsutil import atomic_path

log = logging.getLogger(__name__)

CKPT_KIND = "vosbench-train-state-1"

log = logging.getLogger(__name__)


def capture_rng() -> dict[str, Any]:
    """The global RNG states (torch CPU/CUDA, numpy, python) as weights_only-safe values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": int(py_version), "state": torch.tensor(py_state, dtype=torch.int64),
                   "gauss": py_gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng`."""
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(x) for x in p["state"].tolist()), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        restore_cuda_rng(list(state["cuda"]))


def restore_cuda_rng(saved: list[torch.Tensor]) -> int:
    """Set the CUDA RNG of each visible GPU from ``saved`` (one state per GPU index at save time).

    A run resumed on fewer (or more) visible GPUs than it was saved on restores the states that fit,
    GPU index by GPU index (under DDP each rank's GPU is its local rank), and warns once; the
    others keep their seeds. ``torch.cuda.set_rng_state_all`` would raise IndexError instead.
    Returns how many states were restored.
    """
    visible = torch.cuda.device_count()
    n = min(len(saved), visible)
    for i in range(n):
        torch.cuda.set_rng_state(saved[i].cpu(), i)
    if len(saved) != visible:
        log.warning("checkpoint holds the CUDA RNG state of %d GPU(s), %d visible now: restored %d; random "
                    "numbers drawn on the GPU will not match an uninterrupted run", len(saved), visible, n)
    return n


def save_training_checkpoint(path: str | os.PathLike, model: torch.nn.Module, **state: Any) -> Path:
    """Write model + config + ``state`` (step, optimizer, rng, ...) atomically to ``path``.

    An ``OSError`` while writing (disk full, read-only folder) becomes a :class:`CheckpointError`;
    whatever was at ``path`` before stays intact.
    """
    from vosbench.models import save_checkpoint

    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            save_checkpoint(tmp, model, kind=CKPT_KIND, **state)
    except OSError as exc:
        reason = "no space left on device" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        raise CheckpointError(f"{path}: cannot save checkpoint: {reason}") from None
    return path


def link_or_copy(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Make ``dst`` hold ``src``'s bytes, atomically: a hard link (no second write or fsync of the
    whole checkpoint), or a copy where the filesystem has no hard links. Later saves replace ``dst``
    by rename, never in place, so the two names never change each other."""
    dst = Path(dst)
    try:
        with atomic_path(dst) as tmp:
            tmp.unlink()
            try:
                os.link(src, tmp)
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise
                shutil.copyfile(src, tmp)
    except OSError as exc:
        reason = "no space left on device" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        raise CheckpointError(f"{dst}: cannot save checkpoint: {reason}") from None
    return dst


def step_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """The ``step-<N>.pt`` files of a run folder, oldest (smallest N) first."""
    found = []
    for p in Path(run_dir).glob("step-*.pt"):
        n = p.stem.removeprefix("step-")
        if n.isdigit():
            found.append((int(n), p))
    return [p for _, p in sorted(found)]


def prune_step_checkpoints(run_dir: str | os.PathLike, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` ``step-<N>.pt`` files (``last.pt`` is not one); returns the deleted."""
    files = step_checkpoints(run_dir)
    doomed = files[: max(len(files) - keep, 0)]
    for p in doomed:
        p.unlink(missing_ok=True)
    return doomed


def load_training_checkpoint(path: str | os.PathLike, expect: Any = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Load a checkpoint written by :func:`save_training_checkpoint` (weights_only=True).

    ``expect`` (a ModelConfig) makes an architecture mismatch a one-line :class:`CheckpointError`.
    """
    from vosbench.models import load_checkpoint

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    return load_checkpoint(path, map_location="cpu", expect=expect)


def non_finite_tensors(model: torch.nn.Module) -> list[str]:
    """Names of the model's floating-point parameters and buffers that hold a NaN or an infinity."""
    return [name for name, t in model.state_dict().items()
            if t.is_floating_point() and not bool(torch.isfinite(t).all())]


def has_checkpoint(run_dir: str | os.PathLike) -> bool:
    """Whether a run folder holds a training checkpoint (``last.pt`` or a ``step-<N>.pt``)."""
    return (Path(run_dir) / "last.pt").exists() or bool(step_checkpoints(run_dir))


def load_resume_checkpoint(run_dir: str | os.PathLike, expect: Any = None) -> tuple[Path, torch.nn.Module, dict[str, Any]]:
    """The checkpoint a resumed run continues from -> (path, model, extra).

    ``last.pt``, unless it is missing or does not load (a copy cut short, a disk that failed), or a
    ``step-<N>.pt`` of a later step exists: then the newest ``step-<N>.pt`` that loads. Each file
    passed over is a warning; none that loads is a :class:`CheckpointError` naming the first problem.
    """
    run_dir = Path(run_dir)
    last = run_dir / "last.pt"
    problems: list[str] = []
    best: tuple[Path, torch.nn.Module, dict[str, Any]] | None = None
    if last.exists():
        try:
            best = (last, *load_training_checkpoint(last, expect))
        except CheckpointError as exc:
            problems.append(str(exc))
    for path in reversed(step_checkpoints(run_dir)):  # newest first
        if best is not None and int(path.stem.removeprefix("step-")) <= int(best[2].get("step", 0)):
            break
        try:
            best = (path, *load_training_checkpoint(path, expect))
            break
        except CheckpointError as exc:
            problems.append(str(exc))
    if best is None:
        raise CheckpointError(f"{problems[0] if problems else f'{run_dir}: no checkpoint'}; no intact checkpoint "
                              f"(last.pt, step-<N>.pt) in {run_dir} to resume from")
    for problem in problems:
        log.warning("%s; resuming from %s instead", problem, best[0])
    return best
