"""Region similarity J (Jaccard index) as the DAVIS-2017 toolkit defines it.

J = |P ∩ G| / |P ∪ G|, and 1 when both masks are empty. Void (255) pixels of the ground truth
count as background: the official toolkit maps them to 0 before splitting objects, so the
object mask ``gt == k`` never contains them.
"""

from __future__ import annotations

import numpy as np


def jaccard_from_counts(intersection: int, union: int) -> float:
    """J from pixel counts: ``intersection / union``, 1.0 when ``union`` is 0 (both empty)."""
    if union == 0:
        return 1.0
    return float(intersection / union)


def jaccard(gt: np.ndarray, pred: np.ndarray) -> float:
    """J of two binary masks of the same shape (any dtype; nonzero = object)."""
    gt = np.asarray(gt, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    if gt.shape != pred.shape:
        raise ValueError(f"mask shapes differ: gt {gt.shape}, prediction {pred.shape}")
    return jaccard_from_counts(int(np.count_nonzero(gt & pred)), int(np.count_nonzero(gt | pred)))
