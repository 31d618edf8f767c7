"""Boundary F-measure as the DAVIS-2017 toolkit defines it, computed exactly but faster.

Definitions (davisvideochallenge/davis2017-evaluation, ``davis2017/metrics.py``):

* **Boundary map** (``seg2bmap``): pixel (y, x) is a boundary pixel when it differs from its east,
  south or south-east neighbour. In the last row only the east neighbour counts, in the last
  column only the south one, and the bottom-right pixel is never a boundary. This equals the
  3-neighbour rule applied to the mask padded by one replicated row and column at the bottom and
  right, which is how it is computed here.
* **Tolerance**: ``ceil(0.008 * image diagonal)`` pixels (8 at 480x854).
* **Matching**: a boundary pixel of one mask is matched when the other mask's boundary, dilated
  with scikit-image's ``disk(radius)`` (offsets with ``dy² + dx² <= radius²``), covers it.
* precision = matched predicted / predicted boundary pixels, recall = matched GT / GT boundary
  pixels; empty predicted and non-empty GT boundary: (1, 0); the converse: (0, 1); both empty:
  (1, 1). F = 2PR / (P + R), 0 when P + R = 0.

Speed-up, exact by construction: matching only asks whether a boundary pixel has a boundary
pixel of the other mask within the disk, so everything is computed on windows, never on the full
frame: the boundary maps over the masks' bounding boxes (grown by one pixel towards the top-left;
the true neighbour row/column beyond a window, or the replicated last row/column at the image
edge, keeps them exact), and the two dilations over the smaller mask's box grown by the radius
(see :func:`f_measure_boxes`). The dilation uses OpenCV with a zero border, a plain binary
dilation inside the window. ``tests/metrics`` prove equality with the full-frame scikit-image
formulation on random masks.
"""

from __future__ import annotations

import cv2
import numpy as np

DEFAULT_BOUND_TH = 0.008


def boundary_tolerance(shape: tuple[int, ...], bound_th: float = DEFAULT_BOUND_TH) -> int:
    """Matching radius in pixels: ``bound_th`` itself when >= 1, else ``ceil(bound_th * diagonal)``."""
    if bound_th >= 1:
        if bound_th != int(bound_th):
            raise ValueError(f"a boundary tolerance >= 1 is a radius in pixels and must be whole, got {bound_th}")
        return int(bound_th)
    return int(np.ceil(bound_th * np.linalg.norm(shape[:2])))


def disk_footprint(radius: int) -> np.ndarray:
    """``(2r+1, 2r+1)`` uint8 disk, equal to ``skimage.morphology.disk(radius)``."""
    offsets = np.arange(-radius, radius + 1)
    dy, dx = np.meshgrid(offsets, offsets, indexing="ij")
    return (dy * dy + dx * dx <= radius * radius).astype(np.uint8)


def _bmap_of_extended(ext: np.ndarray) -> np.ndarray:
    """Boundary of ``ext[:-1, :-1]`` given its east/south neighbours in the extra last row/column.

    differs(E) | differs(S) | differs(SE) == differs(E) | differs(S) | (east neighbour differs from
    its own south neighbour): when E agrees, SE differs exactly when the east pixel's S does.
    Computed on the flattened (C-contiguous) array; the extra column absorbs the row wrap.
    """
    rows, n = ext.shape[0] - 1, ext.shape[1]
    flat = ext.reshape(-1)
    m = rows * n
    b = np.empty(m, dtype=bool)
    np.not_equal(flat[: m - 1], flat[1:m], out=b[: m - 1])  # east
    south = flat[:m] ^ flat[n : m + n]
    b[: m - 1] |= south[: m - 1]
    b[: m - 1] |= south[1:m]  # the east neighbour's south
    b[m - 1] = False  # the extra column, dropped below
    return b.reshape(rows, n)[:, :-1]


def window_bmap(seg: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """``seg2bmap(seg)[y0:y1, x0:x1]`` computed from that window only (``seg`` is a bool mask)."""
    h, w = seg.shape
    y_end, x_end = min(y1 + 1, h), min(x1 + 1, w)
    ext = np.empty((y1 - y0 + 1, x1 - x0 + 1), dtype=bool)  # the window plus its south/east neighbours
    ext[: y_end - y0, : x_end - x0] = seg[y0:y_end, x0:x_end]
    if y_end == y1:  # window reaches the bottom edge: replicate the last row
        ext[-1, : x_end - x0] = seg[h - 1, x0:x_end]
    if x_end == x1:  # window reaches the right edge: replicate the last column
        ext[:, -1] = ext[:, -2]
    return _bmap_of_extended(ext)


def seg2bmap(seg: np.ndarray, width: int | None = None, height: int | None = None) -> np.ndarray:
    """Binary boundary map of a mask, as the official ``_seg2bmap`` (returned as bool).

    With ``width``/``height`` different from the mask's ``w x h``, boundary pixel (y, x) is mapped
    to ``(1 + floor(y - 1 + height / h), 1 + floor(x - 1 + width / h))`` of a ``height x width``
    map, exactly as the official code does (note its ``width / h``, not ``width / w``). Its size
    check, ``assert not (width > w | height > h | abs(ar1 - ar2) > 0.01)``, parses as the chained
    comparison ``width > (w | height) > (h | abs(...)) > 0.01``: it checks nothing unless
    ``width > (w | height)``, and then fails with a TypeError. Here that case, and a pixel mapped
    outside the map (an IndexError there), raise ValueError. The evaluation never uses this branch.
    """
    seg = np.asarray(seg).astype(bool)
    if seg.ndim != 2:
        raise ValueError(f"seg2bmap needs a 2-D mask, got shape {seg.shape}")
    h, w = seg.shape
    width = w if width is None else int(width)
    height = h if height is None else int(height)
    b = window_bmap(seg, 0, h, 0, w)
    if width == w and height == h:
        return b
    if width > (w | height):
        raise ValueError(f"can't convert {w}x{h} seg to {width}x{height} bmap (the official code fails here too)")
    ys, xs = np.nonzero(b)
    rows = 1 + np.floor((ys - 1) + height / h).astype(np.int64)
    cols = 1 + np.floor((xs - 1) + width / h).astype(np.int64)
    bad = (rows >= height) | (cols >= width)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"boundary pixel ({ys[i]}, {xs[i]}) of a {w}x{h} seg maps outside the {width}x{height} bmap")
    bmap = np.zeros((height, width), dtype=bool)
    bmap[rows, cols] = True
    return bmap


def f_measure_from_counts(n_fg: int, n_gt: int, fg_match: int, gt_match: int) -> float:
    """F from boundary pixel counts, with the official edge cases (see the module docstring)."""
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1.0, 0.0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0.0, 1.0
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1.0, 1.0
    else:
        precision = fg_match / float(n_fg)
        recall = gt_match / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


Box = tuple[int, int, int, int]  # y0, y1, x0, x1 (end-exclusive)


def bounding_box(mask: np.ndarray) -> Box | None:
    """``(y0, y1, x0, x1)`` (end-exclusive) of the nonzero pixels of a bool mask, None if empty."""
    x, y, w, h = cv2.boundingRect(np.ascontiguousarray(mask).view(np.uint8))
    if w == 0:
        return None
    return y, y + h, x, x + w


def union_box(a: Box | None, b: Box | None) -> Box | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3])


def _intersect(a: Box, b: Box) -> Box:
    return max(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), min(a[3], b[3])


def _boundary_box(box: Box) -> Box:
    """Where a mask inside ``box`` can have boundary pixels: one more row/column at the top-left."""
    return max(box[0] - 1, 0), box[1], max(box[2] - 1, 0), box[3]


def _grow(box: Box, r: int, shape: tuple[int, int]) -> Box:
    return max(box[0] - r, 0), min(box[1] + r, shape[0]), max(box[2] - r, 0), min(box[3] + r, shape[1])


def _area(box: Box) -> int:
    return (box[1] - box[0]) * (box[3] - box[2])


def _dilate(b: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    out = cv2.dilate(b.view(np.uint8), footprint, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return out.view(bool)


def f_measure_boxes(gt: np.ndarray, pred: np.ndarray, gt_box: Box | None, pred_box: Box | None,
                    footprint: np.ndarray) -> float:
    """F of two full-frame bool masks given their bounding boxes (None = empty mask).

    Let A be the mask with the smaller box and B the other. Every boundary pixel of A, and every
    pixel within the radius of one, lies in A's boundary box grown by the radius (W); so both
    dilations and both match counts are computed inside W, and B's boundary is only counted over
    its own box. A prediction with scattered false positives far from the object (a full-frame
    box) therefore costs one cheap boundary pass, not full-frame dilations.
    """
    if gt_box is None and pred_box is None:
        return 1.0
    radius = footprint.shape[0] // 2
    if gt_box is None or pred_box is None:  # one mask empty: only the other's boundary count matters
        mask, box = (pred, pred_box) if gt_box is None else (gt, gt_box)
        n = int(np.count_nonzero(window_bmap(mask, *_boundary_box(box))))
        return f_measure_from_counts(n, 0, 0, 0) if gt_box is None else f_measure_from_counts(0, n, 0, 0)
    gt_is_a = _area(gt_box) <= _area(pred_box)
    a, a_box, b, b_box = (gt, gt_box, pred, pred_box) if gt_is_a else (pred, pred_box, gt, gt_box)
    a_bbox, b_bbox = _boundary_box(a_box), _boundary_box(b_box)
    w = _intersect(_grow(a_bbox, radius, a.shape), union_box(a_bbox, b_bbox))
    u = union_box(b_bbox, w)
    b_u = window_bmap(b, *u)  # B's boundary over its own box and W
    n_b = int(np.count_nonzero(b_u))
    b_w = b_u[w[0] - u[0] : w[1] - u[0], w[2] - u[2] : w[3] - u[2]]
    a_w = window_bmap(a, *w)
    n_a = int(np.count_nonzero(a_w))
    match_a = match_b = 0
    if n_a and n_b:
        match_a = int(np.count_nonzero(a_w & _dilate(b_w, footprint)))
        match_b = int(np.count_nonzero(b_w & _dilate(a_w, footprint)))
    if gt_is_a:
        return f_measure_from_counts(n_b, n_a, match_b, match_a)
    return f_measure_from_counts(n_a, n_b, match_a, match_b)


def boundary_f_measure(gt: np.ndarray, pred: np.ndarray, bound_th: float = DEFAULT_BOUND_TH) -> float:
    """Boundary F of two binary masks of the same shape (nonzero = object)."""
    gt = np.ascontiguousarray(np.asarray(gt).astype(bool, copy=False))
    pred = np.ascontiguousarray(np.asarray(pred).astype(bool, copy=False))
    if gt.shape != pred.shape or gt.ndim != 2:
        raise ValueError(f"need two 2-D masks of the same shape, got gt {gt.shape}, prediction {pred.shape}")
    footprint = disk_footprint(boundary_tolerance(gt.shape, bound_th))
    return f_measure_boxes(gt, pred, bounding_box(gt), bounding_box(pred), footprint)


__all__ = [
    "DEFAULT_BOUND_TH",
    "boundary_f_measure",
    "boundary_tolerance",
    "bounding_box",
    "disk_footprint",
    "f_measure_boxes",
    "f_measure_from_counts",
    "seg2bmap",
    "union_box",
    "window_bmap",
]
