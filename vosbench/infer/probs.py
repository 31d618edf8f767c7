"""Saved soft probabilities (``infer --save-probs``): the format, a reader, and their merge into masks.

Format (docs/probabilities.md): ``<dir>/<seq>/probs/<frame>.npz``, one file per frame, holding

* ``probs``: uint8 ``K+1, H, W``, ``round(255 p)`` with ``p`` clamped to [0, 1]; channel 0 is the
  background, channel ``k`` the object ``object_ids[k-1]``;
* ``object_ids``: the ``K`` object ids (1..254), in channel order.

Another method's probabilities written this way can be merged with vosbench's
(:func:`merge_folders`) or join an ``infer --ensemble`` as a member (:class:`SavedProbsPredictor`).
Both average the dequantised probabilities (``q / 255``, float32) with normalised weights, then
take the argmax, exactly as a checkpoint ensemble averages its members.
"""

from __future__ import annotations

import hashlib
import math
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from vosbench import __version__
from vosbench.data.imageio import write_mask
from vosbench.errors import DataError
from vosbench.fsutil import atomic_dir, check_regular_file, sha256_file, sweep_temps
from vosbench.infer.recipe import normalise_weights
from vosbench.progress import Progress, ensure_progress
from vosbench.provenance import (
    INFORMATIONAL,
    PER_SEQUENCE,
    check_same_provenance,
    files_fingerprint,
    read_provenance,
    write_provenance,
)

PROBS_DIR = "probs"  # <dir>/<seq>/probs/<frame>.npz


def quantize(probs: Tensor) -> np.ndarray:
    """``K+1,H,W`` probabilities -> the stored uint8 ``round(255 p)``."""
    return (probs.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def dequantize(q: np.ndarray, device: str | torch.device = "cpu") -> Tensor:
    """Stored uint8 probabilities -> float32 ``q / 255`` on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(q)).to(device).float().div_(255)


def write_probs(path: str | os.PathLike, q: np.ndarray, object_ids: Sequence[int]) -> None:
    """Write one frame's stored probabilities (uint8 ``K+1,H,W``) and object ids."""
    np.savez_compressed(path, probs=q, object_ids=np.asarray(list(object_ids), dtype=np.int64))


def read_probs(path: str | os.PathLike) -> tuple[np.ndarray, tuple[int, ...]]:
    """(uint8 ``K+1,H,W`` probabilities, object ids) of one frame; one-line DataError if malformed."""
    path = Path(path)
    check_regular_file(path, "probabilities file")
    try:
        with np.load(path, allow_pickle=False) as data:
            q, ids = data["probs"], data["object_ids"]
    except FileNotFoundError:
        raise DataError(f"{path}: probabilities not found") from None
    except KeyError as exc:
        raise DataError(f"{path}: no {exc.args[0]!r} array (expected 'probs' and 'object_ids')") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz of probabilities ({exc})") from None
    if q.dtype != np.uint8 or q.ndim != 3:
        raise DataError(f"{path}: 'probs' must be uint8 K+1,H,W, got {q.dtype} of shape {q.shape}")
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise DataError(f"{path}: 'object_ids' must be a 1-D integer array, got {ids.dtype} of shape {ids.shape}")
    out = tuple(int(i) for i in ids)
    if q.shape[0] != len(out) + 1:
        raise DataError(f"{path}: {q.shape[0]} channels for {len(out)} object ids (expected K+1: background first)")
    if len(set(out)) != len(out) or any(not 0 < i < 255 for i in out):
        raise DataError(f"{path}: object ids must be distinct and in 1..254, got {list(out)}")
    return q, out


class ProbsFolder:
    """A folder of saved probabilities: ``root/<seq>/probs/<frame>.npz``."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: probabilities folder not found")
        try:
            self._index = {
                d.name: sorted(p.stem for p in (d / PROBS_DIR).glob("*.npz") if not p.name.startswith("."))
                for d in sorted(self.root.iterdir())
                if d.is_dir() and not d.name.startswith(".") and (d / PROBS_DIR).is_dir()
            }
        except OSError as exc:
            raise DataError(f"{self.root}: cannot list the probabilities ({exc.strerror or exc})") from None
        self._index = {k: v for k, v in self._index.items() if v}
        if not self._index:
            raise DataError(f"{self.root}: no saved probabilities (expected <seq>/{PROBS_DIR}/<frame>.npz, "
                            "as `vosbench infer --save-probs` writes)")

    def sequences(self) -> list[str]:
        return list(self._index)

    def frames(self, sequence: str) -> list[str]:
        return list(self._index.get(sequence, ()))

    def path(self, sequence: str, frame: str) -> Path:
        return self.root / sequence / PROBS_DIR / f"{frame}.npz"

    def read(self, sequence: str, frame: str) -> tuple[np.ndarray, tuple[int, ...]]:
        return read_probs(self.path(sequence, frame))

    def sha256(self) -> str:
        """One digest of every saved frame (names and bytes), for provenance records."""
        h = hashlib.sha256()
        for seq, frames in sorted(self._index.items()):
            for frame in frames:
                h.update(f"{seq}/{frame}\0{sha256_file(self.path(seq, frame))}\0".encode())
        return h.hexdigest()


def aligned(q: np.ndarray, ids: Sequence[int], order: Sequence[int], where: str, device="cpu") -> Tensor:
    """Dequantised ``q`` with its object channels put in ``order`` (an object it lacks: zeros)."""
    p = dequantize(q, device)
    if list(ids) == list(order):
        return p
    out = torch.zeros((len(order) + 1, *p.shape[1:]), dtype=p.dtype, device=p.device)
    out[0] = p[0]
    channel = {oid: k + 1 for k, oid in enumerate(ids)}
    for k, oid in enumerate(order):
        if oid in channel:
            out[k + 1] = p[channel[oid]]
    missing = sorted(set(ids) - set(order))
    if missing:
        raise DataError(f"{where}: object id(s) {', '.join(map(str, missing))} are not objects of this video")
    return out


def weighted_sum(probs: Sequence[Tensor], weights: Sequence[float]) -> Tensor:
    """``sum(w_i * p_i)`` in member order, as :class:`~vosbench.infer.ensemble.EnsembleInference` averages."""
    total = None
    for p, w in zip(probs, weights):
        p = p * w
        total = p if total is None else total.add_(p)
    return total


def labels_of(probs: Tensor, object_ids: Sequence[int]) -> np.ndarray:
    """``H,W`` uint8 id mask: the argmax over ``[background, *object_ids]``."""
    lut = np.array([0, *object_ids], dtype=np.uint8)
    # max(0).indices is argmax(0), first maximum on ties included, ~8x faster on CPU for K+1,480,854
    # (argmax over the leading dim takes a slow path: 44 ms vs 5 ms, benchmarks/hf_speed.py)
    return lut[probs.max(0).indices.cpu().numpy()]


class SavedProbsPredictor:
    """An ensemble member that replays saved probabilities of one video (same ``step`` contract as the engine).

    Objects join as the masks given to :meth:`step` introduce them, like a model member's, and the
    saved channels are put in that order; frame ``i`` of ``frames`` is read on the ``i``-th step.
    """

    def __init__(self, folder: ProbsFolder, sequence: str, frames: Sequence[str]):
        self.folder, self.sequence, self.frames = folder, sequence, list(frames)
        have = set(folder.frames(sequence))
        missing = [f for f in self.frames if f not in have]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise DataError(f"{folder.path(sequence, missing[0])}: probabilities missing{more}")
        self.object_ids: list[int] = []
        self._t = 0

    def reset(self) -> None:
        self.object_ids, self._t = [], 0

    def step(self, image: Tensor, mask=None, objects: Sequence[int] | None = None, depth=None) -> Tensor:
        if mask is not None and objects is not None:
            self.object_ids += [int(o) for o in objects if int(o) not in self.object_ids]
        if self._t >= len(self.frames):
            raise DataError(f"{self.folder.root / self.sequence}: more frames than saved probabilities")
        frame = self.frames[self._t]
        self._t += 1
        q, ids = self.folder.read(self.sequence, frame)
        if q.shape[1:] != tuple(image.shape[-2:]):
            raise DataError(f"{self.folder.path(self.sequence, frame)}: probabilities of size {q.shape[2]}x{q.shape[1]} "
                            f"for a {image.shape[-1]}x{image.shape[-2]} frame")
        return aligned(q, ids, self.object_ids, str(self.folder.path(self.sequence, frame)), image.device)


@dataclass
class MergeSummary:
    out: Path
    members: list[str]
    sequences: list[str] = field(default_factory=list)  # written
    skipped: list[str] = field(default_factory=list)  # already there
    frames: int = 0


def _check_same_frames(folders: Sequence[ProbsFolder]) -> list[str]:
    """The sequences of the first folder; one DataError listing what another folder lacks or adds."""
    first = folders[0]
    problems = []
    for other in folders[1:]:
        for seq in sorted(set(first.sequences()) ^ set(other.sequences())):
            lacking = other if seq in first.sequences() else first
            problems.append(f"{lacking.root}: no probabilities of sequence {seq!r}")
        for seq in first.sequences():
            if seq in other.sequences() and first.frames(seq) != other.frames(seq):
                diff = sorted(set(first.frames(seq)) ^ set(other.frames(seq)))
                problems.append(f"{other.root / seq}: frames differ from {first.root / seq} ({', '.join(diff[:5])})")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise DataError("; ".join(problems[:3]) + more)
    return first.sequences()


def _check_same_size(read: Sequence[tuple[np.ndarray, tuple[int, ...]]], paths: Sequence[Path]) -> None:
    """The probabilities of one frame from every folder cover the same H,W (else one line naming both)."""
    size = tuple(read[0][0].shape[-2:])
    for (q, _), path in zip(read[1:], paths[1:]):
        if tuple(q.shape[-2:]) != size:
            raise DataError(f"{path}: probabilities of {q.shape[-2]}x{q.shape[-1]} pixels, but {paths[0]} has "
                            f"{size[0]}x{size[1]}; merge needs the same frame size in every folder")


def merge_record(folders: Sequence[ProbsFolder], weights: Sequence[float], seq: str, save_probs: bool) -> dict:
    """The provenance of one merged sequence (:mod:`vosbench.provenance`): each member's weight and
    the record of the run that made it (when it has one); per sequence, the fingerprint of each
    member's saved probabilities and the inputs its own record names."""
    own = [read_provenance(f.root / seq) or {} for f in folders]
    return {
        "vosbench": __version__,
        "member_folders": [str(f.root.absolute()) for f in folders],
        "merge": [{"weight": round(float(w), 9), "run": {k: v for k, v in r.items() if k not in INFORMATIONAL
                                                         and k not in PER_SEQUENCE} or None}
                  for w, r in zip(weights, own)],
        "options": {"save_probs": bool(save_probs)},
        "inputs": {"probs": [files_fingerprint(f.path(seq, n) for n in f.frames(seq)) for f in folders],
                   "members": [r.get("inputs") for r in own]},
    }


def merge_folders(
    members: Sequence[tuple[str | os.PathLike, float]],
    out: str | os.PathLike,
    *,
    save_probs: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> MergeSummary:
    """Average saved probabilities (weights normalised to sum 1) into ``out/<seq>/<frame>.png`` masks.

    Every folder must hold the same sequences and frames. Objects are those of the first folder in
    its order, then any others in order of appearance. Each sequence is written into a temp folder
    and renamed into place when complete, with a ``provenance.json`` (:func:`merge_record`); a
    finished sequence made the same way is skipped, one made otherwise (other members, weights,
    probabilities or options) refuses the run unless ``overwrite``.
    With ``save_probs`` the merged probabilities are saved too, in the same format.
    """
    if not members:
        raise DataError("merge needs at least one probabilities folder")
    weights = [float(w) for _, w in members]
    if any(not (w > 0 and math.isfinite(w)) for w in weights):
        raise DataError(f"merge weights must be > 0 and finite, got {weights}")
    weights = normalise_weights(weights)
    folders = [ProbsFolder(p) for p, _ in members]
    out = Path(out)
    if any(out.resolve() == f.root.resolve() for f in folders):
        raise DataError(f"{out}: write the merged masks to a new folder, not into an input")
    names = _check_same_frames(folders)
    progress = ensure_progress(progress)
    summary = MergeSummary(out, [f"{f.root} (w={w:.3g})" for f, w in zip(folders, weights)])
    records = {seq: merge_record(folders, weights, seq, save_probs) for seq in names}
    for seq in names:  # refuse before any work when a finished folder holds other results
        if (out / seq).is_dir() and not overwrite:
            check_same_provenance(out / seq, records[seq])
    progress.start(f"merging {len(folders)} folders", total=sum(len(folders[0].frames(n)) for n in names))
    try:
        out.mkdir(parents=True, exist_ok=True)
        sweep_temps(out)  # sequence folders of a merge killed mid-write
        for seq in names:
            target = out / seq
            frames = folders[0].frames(seq)
            if target.is_dir() and not overwrite:
                summary.skipped.append(seq)
                progress.advance(len(frames))
                continue
            with atomic_dir(target) as tmp:
                write_provenance(tmp, records[seq])
                if save_probs:
                    (tmp / PROBS_DIR).mkdir()
                for frame in frames:
                    read = [f.read(seq, frame) for f in folders]
                    _check_same_size(read, [f.path(seq, frame) for f in folders])
                    order = list(read[0][1])
                    for _, ids in read[1:]:
                        order += [i for i in ids if i not in order]
                    probs = [aligned(q, ids, order, str(f.path(seq, frame))) for f, (q, ids) in zip(folders, read)]
                    merged = weighted_sum(probs, weights)
                    write_mask(tmp / f"{frame}.png", labels_of(merged, order))
                    if save_probs:
                        write_probs(tmp / PROBS_DIR / f"{frame}.npz", quantize(merged), order)
                    progress.advance()
            summary.sequences.append(seq)
            summary.frames += len(frames)
    except OSError as exc:
        raise DataError(f"{exc.filename or out}: cannot write the merged masks ({exc.strerror or exc})") from None
    return summary


__all__ = [
    "PROBS_DIR",
    "MergeSummary",
    "ProbsFolder",
    "SavedProbsPredictor",
    "dequantize",
    "labels_of",
    "merge_folders",
    "quantize",
    "read_probs",
    "weighted_sum",
    "write_probs",
]
