"""J and F of every object of one frame, from the decoded id masks (each decoded once)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vosbench.metrics.boundary import bounding_box, f_measure_boxes
from vosbench.metrics.jaccard import jaccard_from_counts


def score_frame(gt: np.ndarray, pred: np.ndarray, n_objects: int, footprint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-object J and F (each shape ``(n_objects,)``) of one frame.

    ``gt`` and ``pred`` are ``H,W`` uint8 id masks of the same shape. Object ``k`` (1..n_objects)
    is ``gt == k`` versus ``pred == k``; GT void (255) and predicted ids above ``n_objects`` are
    therefore background (callers refuse or drop extra ids before). ``footprint`` is the matching
    disk (:func:`~vosbench.metrics.boundary.disk_footprint`).
    """
    return score_ids(gt, pred, range(1, n_objects + 1), footprint)


def score_ids(gt: np.ndarray, pred: np.ndarray, ids: Sequence[int], footprint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-object J and F of the objects ``ids`` (in that order) of one frame: ``gt == id`` versus ``pred == id``."""
    j = np.empty(len(ids), dtype=np.float64)
    f = np.empty(len(ids), dtype=np.float64)
    for i, oid in enumerate(ids):
        g = gt == oid
        p = pred == oid
        g_box, p_box = bounding_box(g), bounding_box(p)
        if g_box is None and p_box is None:  # both empty
            j[i] = f[i] = 1.0
            continue
        n_g = int(np.count_nonzero(g[g_box[0] : g_box[1], g_box[2] : g_box[3]])) if g_box else 0
        n_p = int(np.count_nonzero(p[p_box[0] : p_box[1], p_box[2] : p_box[3]])) if p_box else 0
        inter = 0
        if g_box and p_box:
            y0, y1, x0, x1 = max(g_box[0], p_box[0]), min(g_box[1], p_box[1]), max(g_box[2], p_box[2]), min(g_box[3], p_box[3])
            if y0 < y1 and x0 < x1:
                inter = int(np.count_nonzero(g[y0:y1, x0:x1] & p[y0:y1, x0:x1]))
        j[i] = jaccard_from_counts(inter, n_g + n_p - inter)
        f[i] = f_measure_boxes(g, p, g_box, p_box, footprint)
    return j, f
