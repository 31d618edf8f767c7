"""The papers' tables from ladder results, and their Markdown / LaTeX / CSV / bar-chart forms.

Values are shown in percent with one decimal, as in the papers (SCM Table 2, D-STM Table 2 and the
challenge tables). A ladder run with several seeds shows ``mean ± std`` over the seeds in every
value column and the Boost as ``+mean [low, high]`` — the 95 % t-interval of the paired
differences (see :mod:`vosbench.ablation.stats`), followed by ``n.s.`` when it contains 0.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from vosbench.ablation.runner import METRIC_KEYS, LadderResult
from vosbench.ablation.stats import ALL, CONFIDENCE, boost_intervals, seed_summary, seed_values
from vosbench.fsutil import atomic_path, atomic_write_text

CHECK = "✓"
NOT_SIGNIFICANT = "n.s."
METRIC_NAMES = {"J&F-Mean": "Global Mean", "J-Mean": "J Mean", "J-Recall": "J Recall", "J-Decay": "J Decay",
                "F-Mean": "F Mean", "F-Recall": "F Recall", "F-Decay": "F Decay"}


def _pct(v: float | None) -> float | None:
    return None if v is None else round(100.0 * v, 1)


def _multi_seed(result: LadderResult) -> bool:
    return len(result.seeds) > 1


def _pm(mean: float, std: float) -> str | None:
    """``mean ± std`` with one decimal (None when there is no value)."""
    return None if pd.isna(mean) else f"{mean:.1f} ± {std:.1f}"


def _boost_ci(row: pd.Series) -> str:
    if pd.isna(row["boost"]):
        return "-"
    text = f"{row['boost']:+.1f} [{row['low']:+.1f}, {row['high']:+.1f}]"
    return text if row["significant"] is True else f"{text} {NOT_SIGNIFICANT}"


def caption(result: LadderResult) -> str:
    """What the multi-seed tables' numbers are (empty for a single seed)."""
    if not _multi_seed(result):
        return ""
    n = len(result.seeds)
    return (f"Mean ± std over {n} seeds (train.seed 0..{n - 1}). Boost: mean paired difference to the previous "
            f"rung (same seed), with its {100 * CONFIDENCE:.0f} % t-interval over the seeds ({n - 1} degrees of "
            f"freedom); {NOT_SIGNIFICANT} = the interval contains 0.")


def boost_table(result: LadderResult, metric: str = "J&F-Mean", subset: str | None = None) -> pd.DataFrame:
    """SCM-style: rung, Global Mean, Boost over the previous rung ("-" for the first); with several
    seeds, ``mean ± std`` and the Boost with its interval (see :func:`caption`)."""
    if _multi_seed(result):
        ci = boost_intervals(result, metric, subset)
        return pd.DataFrame({"Methods": list(ci.index),
                             "Global Mean": [_pm(m, s) for m, s in zip(ci["mean"], ci["std"])],
                             "Boost": [_boost_ci(row) for _, row in ci.iterrows()]})
    rows = []
    prev: float | None = None
    for r in result.rungs:
        src = r.subsets.get(subset, {}) if subset else r.metrics
        v = _pct(src.get(metric))
        boost = "-" if prev is None or v is None else f"{v - prev:+.1f}"
        rows.append({"Methods": r.name, "Global Mean": v, "Boost": boost})
        prev = v
    return pd.DataFrame(rows)


def subset_boost_table(result: LadderResult, metric: str = "J&F-Mean") -> pd.DataFrame | None:
    """:func:`boost_table` side by side for the whole split and each evaluation subset (e.g.
    look-alike / other videos): columns ``<metric name> (<subset>)`` and ``Boost (<subset>)``.
    None when the ladder's evaluation has no subsets."""
    subsets = sorted({s for r in result.rungs for s in r.subsets})
    if not subsets:
        return None
    name = "J&F" if metric == "J&F-Mean" else METRIC_NAMES.get(metric, metric)
    parts = []
    for s in [None, *subsets]:
        label = s or ALL
        df = boost_table(result, metric, s).set_index("Methods")
        parts.append(df.rename(columns={"Global Mean": f"{name} ({label})", "Boost": f"Boost ({label})"}))
    return pd.concat(parts, axis=1).reset_index()


def checkmark_table(result: LadderResult, metric: str = "J&F-Mean") -> pd.DataFrame:
    """D-STM-style: one column per feature with a check mark where the rung has it, then J&F."""
    features = list(result.ladder.features) or sorted({f for r in result.rungs for f in r.features})
    summary = seed_summary(result, [metric])[metric] if _multi_seed(result) else None
    rows = []
    for r in result.rungs:
        row: dict[str, object] = {f: (CHECK if f in r.features else "") for f in features}
        if summary is not None:
            row["J&F"] = _pm(summary.loc[r.name, "mean"], summary.loc[r.name, "std"])
        else:
            row["J&F"] = _pct(r.metrics.get(metric))
        rows.append(row)
    return pd.DataFrame(rows, index=[r.name for r in result.rungs])


def full_table(result: LadderResult) -> pd.DataFrame:
    """Challenge-style: Global Mean, J Mean/Recall/Decay, F Mean/Recall/Decay, and any subsets."""
    rows = []
    subsets = sorted({s for r in result.rungs for s in r.subsets})
    if _multi_seed(result):
        whole = seed_summary(result)
        parts = {s: seed_summary(result, ["J&F-Mean"], s)["J&F-Mean"] for s in subsets}
        for r in result.rungs:
            row = {"Rung": r.name}
            for k in METRIC_KEYS:
                row[METRIC_NAMES[k]] = _pm(whole.loc[r.name, (k, "mean")], whole.loc[r.name, (k, "std")])
            for s in subsets:
                row[f"J&F ({s})"] = _pm(parts[s].loc[r.name, "mean"], parts[s].loc[r.name, "std"])
            rows.append(row)
        return pd.DataFrame(rows)
    for r in result.rungs:
        row = {"Rung": r.name}
        for k in METRIC_KEYS:
            row[METRIC_NAMES[k]] = _pct(r.metrics.get(k))
        for s in subsets:
            row[f"J&F ({s})"] = _pct(r.subsets.get(s, {}).get("J&F-Mean"))
        rows.append(row)
    return pd.DataFrame(rows)


def _cell(v: object) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


def to_markdown(df: pd.DataFrame, index: bool = False) -> str:
    cols = ([df.index.name or ""] if index else []) + [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for idx, row in df.iterrows():
        cells = ([str(idx)] if index else []) + [_cell(v) for v in row.tolist()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "$": r"\$",
        "{": r"\{", "}": r"\}", CHECK: r"\checkmark"}


def _tex(s: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in s)


def to_latex(df: pd.DataFrame, index: bool = False) -> str:
    cols = ([df.index.name or ""] if index else []) + [str(c) for c in df.columns]
    spec = "l" + "c" * (len(cols) - 1)
    lines = [f"\\begin{{tabular}}{{{spec}}}", "\\toprule", " & ".join(_tex(c) for c in cols) + r" \\", "\\midrule"]
    for idx, row in df.iterrows():
        cells = ([str(idx)] if index else []) + [_cell(v) for v in row.tolist()]
        lines.append(" & ".join(_tex(c) for c in cells) + r" \\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    return "\n".join(lines) + "\n"


def bar_chart(result: LadderResult, path: str | os.PathLike, metric: str = "J&F-Mean") -> None:
    """A bar chart PNG of the ladder's metric per rung (subset bars beside, when present)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = [r.name for r in result.rungs]
    subsets = [None] + sorted({s for r in result.rungs for s in r.subsets})
    series = {}  # label -> (mean per rung, std per rung or None)
    for s in subsets:
        label = s or "all videos"
        if _multi_seed(result):
            summary = seed_summary(result, [metric], s)[metric]
            series[label] = (summary["mean"].fillna(0.0).tolist(), summary["std"].fillna(0.0).tolist())
        else:
            src = [r.subsets.get(s, {}) if s else r.metrics for r in result.rungs]
            series[label] = ([_pct(m.get(metric)) or 0.0 for m in src], None)
    x = np.arange(len(names))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(names)), 4), dpi=120)
    for i, (label, (vals, err)) in enumerate(series.items()):
        bars = ax.bar(x + (i - (len(series) - 1) / 2) * width, vals, width, label=label, yerr=err, capsize=2)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(x, names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(f"{metric} (%)")
    ax.set_title(result.ladder.name + (f" (mean ± std, {len(result.seeds)} seeds)" if _multi_seed(result) else ""))
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def write_tables(result: LadderResult, out: str | os.PathLike) -> dict[str, Path]:
    """Write boost/checkmark/full tables (and boost-subsets: the Boost per evaluation subset, when the
    evaluation has subsets) as .md, .tex and .csv, and ``ladder.png``; return the paths.
    With several seeds the .md tables start with the :func:`caption`, and ``seeds.csv`` (every
    seed's values) and ``boost-ci.csv`` (the numeric Boost intervals, per subset) are added."""
    out = Path(out)
    written: dict[str, Path] = {}
    note = caption(result)
    tables = {
        "boost": (boost_table(result), False),
        "checkmarks": (checkmark_table(result), True),
        "full": (full_table(result), False),
    }
    by_subset = subset_boost_table(result)
    if by_subset is not None:
        tables["boost-subsets"] = (by_subset, False)
    for name, (df, index) in tables.items():
        md = (note + "\n\n" if note else "") + to_markdown(df, index)
        for ext, text in (("md", md), ("tex", to_latex(df, index))):
            p = out / f"{name}.{ext}"
            atomic_write_text(p, text)
            written[f"{name}.{ext}"] = p
        p = out / f"{name}.csv"
        atomic_write_text(p, df.to_csv(index=index))
        written[f"{name}.csv"] = p
    if note:
        subsets = [None] + sorted({s for r in result.rungs for s in r.subsets})
        ci = pd.concat({s or ALL: boost_intervals(result, subset=s) for s in subsets}, names=["subset", "rung"])
        for name, df in (("seeds", seed_values(result)), ("boost-ci", ci.reset_index())):
            p = out / f"{name}.csv"
            atomic_write_text(p, df.to_csv(index=False))
            written[f"{name}.csv"] = p
    p = out / "ladder.png"
    bar_chart(result, p)
    written["ladder.png"] = p
    return written
