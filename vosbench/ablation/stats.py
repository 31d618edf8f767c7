"""Statistics over a ladder's seeds (``run_ladder(..., seeds=N)``), as pandas frames.

Values are in percent (J&F points), unrounded. Per rung: the mean and the sample standard
deviation (``ddof=1``) over the seeds. The **Boost** of a rung is the mean of its *paired*
differences to the previous rung: seed s of the rung minus seed s of the rung before it (the two
share ``train.seed``, hence the sample order of training), with a two-sided Student-t interval
over those N differences (N - 1 degrees of freedom). A Boost whose interval contains 0 is not
significant. With one seed there is no interval (NaN bounds, significance unknown).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from vosbench.ablation.runner import METRIC_KEYS, LadderResult, RungResult

CONFIDENCE = 0.95
ALL = "all"  # the subset name of the whole evaluation split in :func:`seed_values`


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """``(mean, low, high)``: the Student-t confidence interval for the mean of ``values``
    (NaN bounds for fewer than two values)."""
    from scipy import stats

    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + confidence / 2, x.size - 1)) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return mean, mean - half, mean + half


def _value(r: RungResult, metric: str, subset: str | None) -> float:
    src = r.subsets.get(subset, {}) if subset and subset != ALL else r.metrics
    v = src.get(metric)
    return math.nan if v is None else 100.0 * float(v)


def rung_values(result: LadderResult, metric: str = "J&F-Mean", subset: str | None = None) -> pd.DataFrame:
    """One row per rung (ladder order), one column per seed: ``metric`` in percent (NaN if absent)."""
    names = [r.name for r in result.seeds[0]]
    data = {seed: [_value(r, metric, subset) for r in rungs] for seed, rungs in enumerate(result.seeds)}
    df = pd.DataFrame(data, index=pd.Index(names, name="rung"))
    df.columns.name = "seed"
    return df


def seed_values(result: LadderResult) -> pd.DataFrame:
    """Every value of every seed, tidy: columns ``rung, seed, subset, metric, value`` (percent);
    ``subset`` is ``"all"`` for the whole split, else a subset name (e.g. ``"look-alike"``)."""
    rows = []
    for rungs in result.seeds:
        for r in rungs:
            for k in METRIC_KEYS:
                if k in r.metrics:
                    rows.append({"rung": r.name, "seed": r.seed, "subset": ALL, "metric": k, "value": _value(r, k, None)})
            for s in sorted(r.subsets):
                for k in r.subsets[s]:
                    rows.append({"rung": r.name, "seed": r.seed, "subset": s, "metric": k, "value": _value(r, k, s)})
    return pd.DataFrame(rows, columns=["rung", "seed", "subset", "metric", "value"])


def seed_summary(result: LadderResult, metrics: Sequence[str] = METRIC_KEYS,
                 subset: str | None = None) -> pd.DataFrame:
    """Per rung (rows, ladder order) and metric: ``mean``, ``std`` (ddof=1; NaN for one seed) and
    ``n`` (seeds with a value), as columns ``(metric, stat)``."""
    parts = {}
    for m in metrics:
        v = rung_values(result, m, subset)
        parts[m] = pd.DataFrame({"mean": v.mean(axis=1), "std": v.std(axis=1, ddof=1), "n": v.count(axis=1)})
    return pd.concat(parts, axis=1)


def boost_intervals(result: LadderResult, metric: str = "J&F-Mean", subset: str | None = None,
                    confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Per rung: ``mean``, ``std``, ``n``, and the Boost over the previous rung paired by seed —
    ``boost`` (mean difference), ``low``/``high`` (the t-interval) and ``significant`` (the
    interval excludes 0; NA for the first rung or a single seed)."""
    v = rung_values(result, metric, subset)
    rows = []
    prev = None
    for name, row in v.iterrows():
        vals = row.dropna()
        entry = {"mean": vals.mean(), "std": vals.std(ddof=1), "n": int(vals.size),
                 "boost": math.nan, "low": math.nan, "high": math.nan, "significant": pd.NA}
        if prev is not None:
            diff = (row - prev).dropna()
            boost, low, high = t_interval(diff.to_numpy(), confidence)
            entry.update(boost=boost, low=low, high=high)
            if not math.isnan(low):
                entry["significant"] = bool(low > 0 or high < 0)
        rows.append(entry)
        prev = row
    df = pd.DataFrame(rows, index=v.index)
    df["significant"] = df["significant"].astype("boolean")
    return df
