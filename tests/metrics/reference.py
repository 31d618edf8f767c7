"""A slow, literal re-implementation of the official DAVIS-2017 formulation, for cross-checks.

Full-frame boolean maps, the official east/south/south-east boundary rule written with shifted
copies, and scikit-image's ``binary_dilation`` with ``disk`` — no cropping, no OpenCV.
"""

from __future__ import annotations

import warnings

import numpy as np
from skimage.morphology import binary_dilation, disk


def reference_bmap(seg: np.ndarray) -> np.ndarray:
    seg = seg.astype(bool)
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ e) | (seg ^ s) | (seg ^ se)
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = False
    return b


def reference_f(gt: np.ndarray, pred: np.ndarray, bound_th: float = 0.008) -> float:
    radius = bound_th if bound_th >= 1 else np.ceil(bound_th * np.linalg.norm(gt.shape))
    fg_b = reference_bmap(pred)
    gt_b = reference_bmap(gt)
    fp = disk(int(radius))
    with warnings.catch_warnings():  # binary_dilation is deprecated in skimage 0.26, still exact
        warnings.simplefilter("ignore", FutureWarning)
        fg_dil = binary_dilation(fg_b, fp)
        gt_dil = binary_dilation(gt_b, fp)
    n_fg, n_gt = fg_b.sum(), gt_b.sum()
    if n_fg == 0 and n_gt > 0:
        p, r = 1, 0
    elif n_fg > 0 and n_gt == 0:
        p, r = 0, 1
    elif n_fg == 0 and n_gt == 0:
        p, r = 1, 1
    else:
        p = np.sum(fg_b & gt_dil) / float(n_fg)
        r = np.sum(gt_b & fg_dil) / float(n_gt)
    return 0.0 if p + r == 0 else float(2 * p * r / (p + r))


def reference_j(gt: np.ndarray, pred: np.ndarray) -> float:
    gt, pred = gt.astype(bool), pred.astype(bool)
    union = np.sum(gt | pred)
    return 1.0 if union == 0 else float(np.sum(gt & pred) / union)


def reference_sequence(gt_masks: list[np.ndarray], pred_masks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-object (K, N) J and F over frames 1..T-2; ``pred_masks`` aligned with ``gt_masks``."""
    first = np.where(gt_masks[0] == 255, 0, gt_masks[0])
    k = int(first.max())
    frames = range(1, len(gt_masks) - 1)
    j = np.array([[reference_j(gt_masks[t] == o, pred_masks[t] == o) for t in frames] for o in range(1, k + 1)])
    f = np.array([[reference_f(gt_masks[t] == o, pred_masks[t] == o) for t in frames] for o in range(1, k + 1)])
    return j, f
