"""Reference predictions that measure how hard the procedural dataset is.

* ``copy``: the first-frame mask repeated on every frame (what a model that never moves gets).
* ``swap``: the ground truth, except that the ids of each look-alike group are permuted after the
  group's paths cross (what a pure appearance matcher does when two identical objects meet).

Both write DAVIS-layout result folders (``OUT/<seq>/<frame>.png``) that any evaluator reads;
:func:`mean_j` scores them with plain region similarity J, the official way (first and last frame
not scored, void pixels ignored, an object absent in both masks counts 1, one mean per object, then
the mean over objects).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vosbench.data.davis import DavisDataset
from vosbench.data.imageio import VOID_ID, encode_mask_png, read_mask
from vosbench.data.overview import read_manifest
from vosbench.errors import ConfigError, DataError
from vosbench.fsutil import atomic_dir
from vosbench.progress import Progress, ensure_progress

BASELINES = ("copy", "swap")


def lookalike_groups(root: str | os.PathLike) -> dict[str, list[dict]]:
    """Sequence -> its look-alike groups (``{"ids": [...], "cross_frame": t}``) from the manifest."""
    manifest = read_manifest(root)
    if manifest is None:
        raise DataError(f"{Path(root) / 'manifest.json'}: not found; the swap baseline needs a synthetic dataset's manifest")
    out = {}
    for name, entry in manifest.get("sequences", {}).items():
        syn = entry.get("synthetic") or {}
        out[name] = list(syn.get("lookalike_groups", []))
    return out


def swap_ids(mask: np.ndarray, groups: list[dict], t: int) -> np.ndarray:
    """Permute each group's ids cyclically (a pair swaps) in frames after its crossing frame."""
    out = mask.copy()
    for g in groups:
        ids = [int(i) for i in g["ids"]]
        if t <= int(g["cross_frame"]) or len(ids) < 2:
            continue
        for src, dst in zip(ids, ids[1:] + ids[:1]):
            out[mask == src] = dst
    return out


def write_baseline(root: str | os.PathLike, out: str | os.PathLike, kind: str, split: str = "val",
                   resolution: str = "480p", progress: Progress | None = None) -> Path:
    """Write the ``copy`` or ``swap`` baseline's predictions for every sequence of ``split``."""
    if kind not in BASELINES:
        raise ConfigError(f"unknown baseline {kind!r}; expected one of {', '.join(BASELINES)}")
    ds = DavisDataset(root, split, resolution)
    groups = lookalike_groups(root) if kind == "swap" else {}
    prog = ensure_progress(progress)
    prog.start(f"{kind} baseline", total=len(ds))
    out = Path(out)
    with atomic_dir(out) as tmp:
        for seq in ds:
            folder = tmp / seq.name
            folder.mkdir()
            first = seq.first_mask()
            for t, stem in enumerate(seq.frame_names):
                if kind == "copy":
                    pred = first
                else:
                    gt = seq.mask(t)
                    if gt is None:
                        raise DataError(f"{seq.name}: frame {stem} has no annotation; the swap baseline needs every frame annotated")
                    pred = swap_ids(gt, groups.get(seq.name, []), t)
                (folder / f"{stem}.png").write_bytes(encode_mask_png(pred))
            prog.advance(1)
    return out


@dataclass(frozen=True)
class JScore:
    """Mean J over all objects of a split, and per sequence (mean over its objects), in [0, 1]."""

    mean: float
    per_sequence: dict[str, float]
    per_object: dict[tuple[str, int], float]

    def mean_over(self, sequences: list[str]) -> float:
        vals = [v for (s, _), v in self.per_object.items() if s in set(sequences)]
        return float(np.mean(vals)) if vals else float("nan")


def _iou(pred: np.ndarray, gt: np.ndarray) -> float:
    union = np.logical_or(pred, gt).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, gt).sum() / union)


def mean_j(root: str | os.PathLike, results: str | os.PathLike, split: str = "val", resolution: str = "480p") -> JScore:
    """Region similarity J of a result folder against the split's annotations."""
    ds = DavisDataset(root, split, resolution)
    results = Path(results)
    per_object: dict[tuple[str, int], float] = {}
    per_sequence: dict[str, float] = {}
    for seq in ds:
        n_obj = int(max([0] + seq.object_ids))
        scores = np.zeros((n_obj, max(0, seq.num_frames - 2)))
        for k, t in enumerate(range(1, seq.num_frames - 1)):
            gt = seq.mask(t)
            if gt is None:
                raise DataError(f"{seq.name}: frame {seq.frame_names[t]} has no annotation; J needs every frame annotated")
            pred = read_mask(results / seq.name / f"{seq.frame_names[t]}.png", allow_gray=True)
            if pred.shape != gt.shape:
                raise DataError(f"{results / seq.name / seq.frame_names[t]}.png: size {pred.shape} differs from "
                                f"the annotation's {gt.shape}")
            care = gt != VOID_ID  # void pixels count for neither mask, as in the official toolkit
            for o in range(n_obj):
                scores[o, k] = _iou((pred == o + 1) & care, (gt == o + 1) & care)
        means = scores.mean(axis=1) if scores.shape[1] else np.ones(n_obj)
        for o in range(n_obj):
            per_object[(seq.name, o + 1)] = float(means[o])
        per_sequence[seq.name] = float(means.mean()) if n_obj else float("nan")
    mean = float(np.mean(list(per_object.values()))) if per_object else float("nan")
    return JScore(mean=mean, per_sequence=per_sequence, per_object=per_object)
