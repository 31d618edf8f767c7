"""MOSEv2 scoring: J, the area-adaptive boundary Ḟ (``F_new``), F, and the disappearance /
reappearance J&Ḟ, as the MOSEv2 scorer (henghuiding/MOSE-api, ``MOSEv2/sam2_rcms/tools/score.py``
and ``metricsv2.py``) computes them. Facts learnt from reading it, implemented independently:

* **Objects and frames.** Each ``meta.json`` object of a video, over frames 1..T-2 (the first and
  last frame are not scored), every object on every one of those frames.
* **J** = (|P ∩ G| + 1) / (|P ∪ G| + 1): +1 smoothing; 1 when both masks are empty.
* **Boundaries** as DAVIS (``seg2bmap``, disk dilation, precision/recall edge cases), with two
  tolerances. Let D = 0.008 x image diagonal (DAVIS's tolerance before rounding up) and
  r = min(D, ceil(0.1 x sqrt(GT area))) (with an empty GT, ceil(0.1 x diagonal), so r = D).
  When r < D: F uses radius ceil(D) (DAVIS's F) and Ḟ radius r. Otherwise (the object is large)
  F = Ḟ, both with scikit-image's ``disk(D)`` for the *unrounded* D, a 17x17 footprint at 480p
  whose disk is centred off the grid (see :func:`skimage_disk`): on large objects the scorer's
  F is therefore not DAVIS's F. Reproduced here, because the scores are the scorer's.
* **Per object**: the means over the scored frames of J, Ḟ and F.
* **Disappearance / reappearance.** On the scored frames, the object is *absent* where its GT
  mask is empty. A disappearance segment is a maximal run of absent frames that does not start
  at the first scored frame; a reappearance segment is a maximal run of present frames that
  follows an absent run. Per object: the mean over its segments of each segment's mean J and
  mean Ḟ (undefined without segments).
* **Global** (percent): ``J``, ``F_new``, ``F`` the means over every object of every video;
  ``J&F_new`` = (J + F_new) / 2, ``J&F`` = (J + F) / 2; ``disappear_J&F_new`` (and
  ``reappear_J&F_new``) = (mean disappearance J + mean disappearance Ḟ) / 2 over the objects
  that have such segments (None when none has). The scorer rounds to 2 decimals; the values here
  are not rounded.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from vosbench.metrics.boundary import bounding_box, disk_footprint, f_measure_boxes
from vosbench.metrics.fastpng import read_id_mask
from vosbench.metrics.report import SequenceScores
from vosbench.metrics.results_source import MaskReader
from vosbench.metrics.rules import _read_pair as read_pair  # one reader, size and id check for every rule
from vosbench.metrics.summary import statistics

DAVIS_TH = 0.008  # the DAVIS tolerance: this share of the image diagonal
AREA_TH = 0.1  # Ḟ's tolerance: this share of the square root of the object's area
F_NEW = "F_new"
ABSENT = "absent"
GLOBAL_NAMES = ("J&F_new", "J", "F_new", "disappear_J&F_new", "reappear_J&F_new", "F", "J&F")


def skimage_disk(radius: float) -> np.ndarray:
    """``skimage.morphology.disk(radius)`` for any radius, float included: the offsets
    ``arange(-radius, radius + 1)`` along each axis, kept where x² + y² <= radius². For a
    non-integer radius they are not integers, so the disk sits off-centre in its footprint (and
    OpenCV anchors the footprint at its middle cell). Equal to :func:`disk_footprint` for whole radii."""
    if float(radius).is_integer():
        return disk_footprint(int(radius))
    offsets = np.arange(-radius, radius + 1)
    return (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius**2).astype(np.uint8)


@lru_cache(maxsize=64)
def _footprint(radius: float) -> np.ndarray:
    return skimage_disk(radius)


def davis_radius(shape: tuple[int, ...]) -> float:
    """D = 0.008 x the image diagonal, unrounded."""
    return DAVIS_TH * float(np.linalg.norm(shape[:2]))


def adaptive_radius(area: int, shape: tuple[int, ...]) -> float:
    """Ḟ's radius for a GT object of ``area`` pixels: min(D, ceil(0.1 sqrt(area))); D when the GT is empty."""
    d = davis_radius(shape)
    if area == 0:
        return min(d, math.ceil(AREA_TH * float(np.linalg.norm(shape[:2]))))
    return min(d, math.ceil(AREA_TH * math.sqrt(area)))


def frame_values(gt: np.ndarray, pred: np.ndarray) -> tuple[float, float, float]:
    """(J, F, Ḟ) of one object in one frame from two bool masks of the same shape."""
    g_box, p_box = bounding_box(gt), bounding_box(pred)
    if g_box is None and p_box is None:
        return 1.0, 1.0, 1.0
    n_g = int(np.count_nonzero(gt[g_box[0] : g_box[1], g_box[2] : g_box[3]])) if g_box else 0
    n_p = int(np.count_nonzero(pred[p_box[0] : p_box[1], p_box[2] : p_box[3]])) if p_box else 0
    inter = 0
    if g_box and p_box:
        y0, y1 = max(g_box[0], p_box[0]), min(g_box[1], p_box[1])
        x0, x1 = max(g_box[2], p_box[2]), min(g_box[3], p_box[3])
        if y0 < y1 and x0 < x1:
            inter = int(np.count_nonzero(gt[y0:y1, x0:x1] & pred[y0:y1, x0:x1]))
    j = (inter + 1) / (n_g + n_p - inter + 1)
    d = davis_radius(gt.shape)
    r = adaptive_radius(n_g, gt.shape)
    if g_box is None or p_box is None:  # one mask empty: F is 0 whatever the tolerance
        f = f_measure_boxes(gt, pred, g_box, p_box, _footprint(d))
        return j, f, f
    if r < d:
        f = f_measure_boxes(gt, pred, g_box, p_box, _footprint(float(math.ceil(d))))
        f_new = f_measure_boxes(gt, pred, g_box, p_box, _footprint(float(r)))
        return j, f, f_new
    f = f_measure_boxes(gt, pred, g_box, p_box, _footprint(d))
    return j, f, f


def score_mosev2(gt, results: MaskReader, *, ignore_extra_ids: bool = False) -> SequenceScores:
    """Per-frame J, F, Ḟ (``extra_frames["F_new"]``) and GT absence (``extra_frames["absent"]``,
    1.0 where the object's GT mask is empty) of each ``meta.json`` object on frames 1..T-2."""
    first = read_id_mask(gt.paths[0], allow_gray=True)
    objects = list(gt.objects)
    frames = gt.scored_frames
    shape = (len(objects), len(frames))
    jm, fm, fnm, absent = (np.empty(shape) for _ in range(4))
    for t, path in enumerate(gt.paths[1:-1]):
        gt_mask, pred = read_pair(path, results, gt.name, first.shape, gt.allowed, ignore_extra_ids)
        for k, oid in enumerate(objects):
            g = gt_mask == oid
            jm[k, t], fm[k, t], fnm[k, t] = frame_values(g, pred == oid)
            absent[k, t] = 0.0 if g.any() else 1.0
    return SequenceScores(gt.name, frames, jm, fm, object_ids=tuple(objects), extra_frames={F_NEW: fnm, ABSENT: absent})


def segments(absent: np.ndarray) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(disappearance, reappearance) segments ``[start, end)`` of one object's scored frames
    (see the module docstring): absent runs not starting at frame 0, and present runs after an absent run."""
    absent = np.asarray(absent, dtype=bool)
    n = absent.size
    edges = np.flatnonzero(absent[1:] != absent[:-1]) + 1
    bounds = [0, *edges.tolist(), n]
    runs = [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]
    disappear = [(s, e) for s, e in runs if absent[s] and s > 0]
    reappear = [(s, e) for s, e in runs if not absent[s] and s > 0]
    return disappear, reappear


def _segment_means(j: np.ndarray, f: np.ndarray, segs) -> tuple[float, float] | None:
    if not segs:
        return None
    return float(np.mean([j[s:e].mean() for s, e in segs])), float(np.mean([f[s:e].mean() for s, e in segs]))


def _jf(pair) -> float | None:
    return None if pair is None else (pair[0] + pair[1]) / 2 * 100


def mosev2_summary(result) -> tuple[dict[str, float | None], dict[str, dict]]:
    """(global values under the scorer's names, in percent; per object name: its Ḟ statistics,
    per-frame Ḟ and its values under the scorer's names)."""
    seqs = {s.name: s for s in result.sequences}
    js, fs, fns, dis, rea = [], [], [], [], []
    per_object: dict[str, dict] = {}
    for o in result.objects:
        s = seqs[o.sequence]
        k = next(k for k in range(s.n_objects) if s.object_id(k) == o.object_id)
        j, f, f_new = s.j[k], s.f[k], s.extra_frames[F_NEW][k]
        d_segs, r_segs = segments(s.extra_frames[ABSENT][k])
        d, r = _segment_means(j, f_new, d_segs), _segment_means(j, f_new, r_segs)
        jm, fm, fnm = float(np.mean(j)), float(np.mean(f)), float(np.mean(f_new))
        js.append(jm)
        fs.append(fm)
        fns.append(fnm)
        if d is not None:
            dis.append(d)
        if r is not None:
            rea.append(r)
        per_object[o.name] = {
            F_NEW: statistics(f_new).as_dict(),
            "F_new_per_frame": [float(v) for v in f_new],
            "mosev2": {
                "J&F_new": (jm + fnm) / 2 * 100, "J": jm * 100, "F_new": fnm * 100,
                "disappear_J&F_new": _jf(d), "reappear_J&F_new": _jf(r),
                "F": fm * 100, "J&F": (jm + fm) / 2 * 100,
                "disappear_segments": [[s.frames[a], s.frames[b - 1]] for a, b in d_segs],
                "reappear_segments": [[s.frames[a], s.frames[b - 1]] for a, b in r_segs],
            },
        }
    jm, fm, fnm = float(np.mean(js)), float(np.mean(fs)), float(np.mean(fns))

    def pooled(pairs) -> float | None:
        if not pairs:
            return None
        return (float(np.mean([p[0] for p in pairs])) + float(np.mean([p[1] for p in pairs]))) / 2 * 100

    values = {
        "J&F_new": (jm + fnm) / 2 * 100, "J": jm * 100, "F_new": fnm * 100,
        "disappear_J&F_new": pooled(dis), "reappear_J&F_new": pooled(rea),
        "F": fm * 100, "J&F": (jm + fm) / 2 * 100,
    }
    return values, per_object
