"""Per-frame scoring under the rules other than DAVIS-2017's (see :mod:`vosbench.metrics.benchmarks`).

* ``davis2016`` and ``late`` follow vos-benchmark: over frames 1..T-2, an object joins the
  scoring on the first frame where it is in the ground truth or in the prediction and stays in
  it; an object that is never in the ground truth of those frames is not reported. DAVIS-2016
  masks are binary (every nonzero pixel is the object, 255 as distributed or 1).
* ``youtube-vos``, ``mose`` and ``lvos`` score fixed objects, each on its own frames.

Frames where an object is not scored hold NaN in :class:`SequenceScores`; its statistics use
the others only.
"""

from __future__ import annotations

import numpy as np

from vosbench.data.imageio import VOID_ID
from vosbench.errors import DataError
from vosbench.metrics.boundary import DEFAULT_BOUND_TH, boundary_tolerance, disk_footprint
from vosbench.metrics.fastpng import read_id_mask
from vosbench.metrics.frame import score_ids
from vosbench.metrics.report import SequenceScores
from vosbench.metrics.results_source import MaskReader
from vosbench.metrics.validation import ObjectIds, first_annotation_ids


def _present(mask: np.ndarray, void_is_object: bool = False) -> set[int]:
    present = np.flatnonzero(np.bincount(mask.ravel(), minlength=256))
    return {int(i) for i in present if i != 0 and (void_is_object or i != VOID_ID)}


def _size(mask: np.ndarray) -> str:
    return f"{mask.shape[1]}x{mask.shape[0]}"


def _read_pair(gt_path, results: MaskReader, name: str, first_shape, allowed: ObjectIds, ignore_extra_ids: bool):
    gt_mask = read_id_mask(gt_path, allow_gray=True)
    if gt_mask.shape != first_shape:
        raise DataError(f"{gt_path}: annotation size {_size(gt_mask)} differs from the first frame's {first_shape[1]}x{first_shape[0]}")
    pred = results.read(name, gt_path.stem)
    where = results.describe(name, gt_path.stem)
    if pred.shape != gt_mask.shape:
        raise DataError(f"{where}: prediction size {_size(pred)} differs from the annotation's {_size(gt_mask)}")
    return gt_mask, allowed.check(pred, where, ignore_extra=ignore_extra_ids)


def _late_allowed(gt) -> ObjectIds:
    """``late``: the ids of every annotation of the sequence are its objects."""
    ids: set[int] = set()
    for path in gt.paths:
        ids |= _present(read_id_mask(path, allow_gray=True))
    return ObjectIds(gt.name, tuple(sorted(ids)), "its annotations")


def score_dynamic(gt, results: MaskReader, *, ignore_extra_ids: bool = False, bound_th: float = DEFAULT_BOUND_TH) -> SequenceScores:
    """``davis2016`` / ``late``: vos-benchmark's rule (objects join when first seen, in GT or prediction)."""
    binary = gt.task == "davis2016"
    allowed = gt.allowed if gt.allowed is not None else _late_allowed(gt)
    first = read_id_mask(gt.paths[0], allow_gray=True)
    footprint = disk_footprint(boundary_tolerance(first.shape, bound_th))
    frames = gt.scored_frames
    active: list[int] = []
    in_gt: set[int] = set()
    rows: dict[int, list[tuple[int, float, float]]] = {}
    for t, path in enumerate(gt.paths[1:-1]):
        gt_mask, pred = _read_pair(path, results, gt.name, first.shape, allowed, ignore_extra_ids)
        if binary:
            gt_mask = (gt_mask != 0).view(np.uint8)
            pred = (pred != 0).view(np.uint8)
        gt_ids = _present(gt_mask)
        in_gt |= gt_ids
        for oid in sorted((gt_ids | _present(pred)) - set(active)):
            active.append(oid)
        j, f = score_ids(gt_mask, pred, active, footprint)
        for oid, jv, fv in zip(active, j, f):
            rows.setdefault(oid, []).append((t, float(jv), float(fv)))
    objects = sorted(in_gt)
    jm = np.full((len(objects), len(frames)), np.nan)
    fm = np.full((len(objects), len(frames)), np.nan)
    for k, oid in enumerate(objects):
        for t, jv, fv in rows[oid]:
            jm[k, t], fm[k, t] = jv, fv
    return SequenceScores(gt.name, frames, jm, fm, object_ids=tuple(objects))


def score_static(gt, results: MaskReader, *, ignore_extra_ids: bool = False, bound_th: float = DEFAULT_BOUND_TH) -> SequenceScores:
    """``youtube-vos`` / ``mose`` / ``lvos``: fixed objects, each on its own frames."""
    first = read_id_mask(gt.paths[0], allow_gray=True)
    if gt.objects:
        objects, scored, allowed = list(gt.objects), list(gt.scored), gt.allowed
    else:  # MOSE: the first annotation's objects on frames 1..T-2
        objects = first_annotation_ids(first)
        stems = frozenset(p.stem for p in gt.paths[1:-1])
        scored = [stems] * len(objects)
        allowed = ObjectIds(gt.name, tuple(objects), "its first annotation")
    frames = gt.scored_frames
    footprint = disk_footprint(boundary_tolerance(first.shape, bound_th))
    jm = np.full((len(objects), len(frames)), np.nan)
    fm = np.full((len(objects), len(frames)), np.nan)
    by_stem = {p.stem: p for p in gt.paths}
    for t, stem in enumerate(frames):
        gt_mask, pred = _read_pair(by_stem[stem], results, gt.name, first.shape, allowed, ignore_extra_ids)
        rows = [k for k in range(len(objects)) if stem in scored[k]]
        j, f = score_ids(gt_mask, pred, [objects[k] for k in rows], footprint)
        jm[rows, t], fm[rows, t] = j, f
    return SequenceScores(gt.name, frames, jm, fm, object_ids=tuple(objects), seen=gt.seen or None)


def lvos_variance(j: np.ndarray, f: np.ndarray) -> float:
    """LVOS's V of one object: the RMS deviation of per-frame J&F from its mean (the variance
    rounded to 4 decimals before the square root, as the LVOS toolkit does)."""
    jf = (np.asarray(j, dtype=np.float64) + np.asarray(f, dtype=np.float64)) / 2
    var = float(np.sum((np.mean(jf) - jf) ** 2) / jf.size)
    return float(np.sqrt(round(var, 4)))


def benchmark_extras(result) -> dict[str, float]:
    """Seen/unseen means (YouTube-VOS, LVOS, where the metadata says), LVOS's V-Mean, SA-V's percentages."""
    if result.task == "sav":
        from vosbench.metrics.sav import sav_extras

        return sav_extras(result)
    seqs = {s.name: s for s in result.sequences}
    groups: dict[bool, list] = {True: [], False: []}
    variances = []
    for o in result.objects:
        s = seqs[o.sequence]
        k = next(k for k in range(s.n_objects) if s.object_id(k) == o.object_id)
        if s.seen is not None and s.seen[k] is not None:
            groups[bool(s.seen[k])].append(o)
        if result.task == "lvos":
            t = s.scored(k)
            variances.append(lvos_variance(s.j[k, t], s.f[k, t]))
    out: dict[str, float] = {}
    for seen, label in ((True, "seen"), (False, "unseen")):
        if groups[seen]:
            out[f"J-{label}"] = float(np.mean([o.j.mean for o in groups[seen]]))
            out[f"F-{label}"] = float(np.mean([o.f.mean for o in groups[seen]]))
    if groups[True] and groups[False]:  # the servers' overall score: the mean of the four
        out["Overall"] = (out["J-seen"] + out["F-seen"] + out["J-unseen"] + out["F-unseen"]) / 4
    if variances:
        out["V-Mean"] = float(np.mean(variances))
    return out
