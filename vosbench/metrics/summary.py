"""Per-object statistics (mean, recall, decay) and the global summary, as the DAVIS-2017 toolkit.

Per object, over its N scored frames (frames 1..T-2):

* mean: the mean of the per-frame values;
* recall: the share of frames whose value is strictly greater than 0.5;
* decay: mean of the first minus mean of the last of 4 temporal bins. The bin edges are
  ``round(linspace(1, N, 5) + 1e-10) - 1`` and bin i holds frames ``edges[i] .. edges[i+1]``
  inclusive, so neighbouring bins share a frame.

Globally every object of every sequence weighs the same; J&F = (J-Mean + F-Mean) / 2.

Difference from the official code, on purpose: ``davis2017/utils.py`` stores the bin edges as
uint8. With N = 256 scored frames the last bin's end ``edges[4] + 1`` wraps to 0, and with
N >= 257 the edges themselves wrap, so the decay comes out as NaN (or a wrong number). Here the
edges are int64 and the decay is right for any N; for N <= 255 the two agree bit for bit. Means are computed with the same pairwise summation as numpy's
``nanmean`` (the official reducer), so the numbers agree to the last bit; per-frame values are
never NaN (J of two empty masks is 1), so ``nanmean`` and ``mean`` coincide.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

DECAY_BINS = 4
RECALL_THRESHOLD = 0.5


def decay_bin_edges(n_frames: int, n_bins: int = DECAY_BINS) -> np.ndarray:
    """Frame indices bounding the decay bins: ``round(linspace(1, N, n_bins + 1) + 1e-10) - 1``."""
    if n_frames < 1:
        raise ValueError("decay needs at least one scored frame")
    return (np.round(np.linspace(1, n_frames, n_bins + 1) + 1e-10) - 1).astype(np.int64)


@dataclass(frozen=True)
class Statistics:
    """Mean, recall and decay of one object's per-frame J or F."""

    mean: float
    recall: float
    decay: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def statistics(values: Sequence[float] | np.ndarray) -> Statistics:
    """Mean, recall (> 0.5) and decay of the per-frame values of one object."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"need a non-empty 1-D array of per-frame values, got shape {v.shape}")
    mean = float(np.mean(v))
    recall = float(np.mean(v > RECALL_THRESHOLD))
    edges = decay_bin_edges(v.size)
    first = v[edges[0] : edges[1] + 1]
    last = v[edges[DECAY_BINS - 1] : edges[DECAY_BINS] + 1]
    decay = float(np.mean(first) - np.mean(last))
    return Statistics(mean, recall, decay)


@dataclass(frozen=True)
class GlobalSummary:
    """The official global table: every object weighs the same."""

    jf_mean: float
    j_mean: float
    j_recall: float
    j_decay: float
    f_mean: float
    f_recall: float
    f_decay: float

    COLUMNS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")

    def values(self) -> tuple[float, ...]:
        return (self.jf_mean, self.j_mean, self.j_recall, self.j_decay, self.f_mean, self.f_recall, self.f_decay)

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.COLUMNS, self.values()))


def summarize(j_stats: Sequence[Statistics], f_stats: Sequence[Statistics]) -> GlobalSummary:
    """Global means over objects (the official reduction: ``np.mean`` of the per-object values)."""
    if not j_stats or len(j_stats) != len(f_stats):
        raise ValueError("need the same, non-zero number of J and F statistics")

    def mean(xs: list[float]) -> float:
        return float(np.mean(np.array(xs, dtype=np.float64)))

    j_mean = mean([s.mean for s in j_stats])
    f_mean = mean([s.mean for s in f_stats])
    return GlobalSummary(
        jf_mean=(j_mean + f_mean) / 2.0,
        j_mean=j_mean,
        j_recall=mean([s.recall for s in j_stats]),
        j_decay=mean([s.decay for s in j_stats]),
        f_mean=f_mean,
        f_recall=mean([s.recall for s in f_stats]),
        f_decay=mean([s.decay for s in f_stats]),
    )
