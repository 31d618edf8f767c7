"""The papers' tables from ladder results, and their Markdown / LaTeX / CSV / bar-chart forms.

Values are shown in percent with one decimal, as in the papers (SCM Table 2, D-STM Table 2 and the
challenge tables).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from vosbench.ablation.runner import METRIC_KEYS, LadderResult
from vosbench.fsutil import atomic_path, atomic_write_text

CHECK = "✓"


def _pct(v: float | None) -> float | None:
    return None if v is None else round(100.0 * v, 1)


def boost_table(result: LadderResult, metric: str = "J&F-Mean", subset: str | None = None) -> pd.DataFrame:
    """SCM-style: rung, Global Mean, Boost over the previous rung ("-" for the first)."""
    rows = []
    prev: float | None = None
    for r in result.rungs:
        src = r.subsets.get(subset, {}) if subset else r.metrics
        v = _pct(src.get(metric))
        boost = "-" if prev is None or v is None else f"{v - prev:+.1f}"
        rows.append({"Methods": r.name, "Global Mean": v, "Boost": boost})
        prev = v
    return pd.DataFrame(rows)


def checkmark_table(result: LadderResult, metric: str = "J&F-Mean") -> pd.DataFrame:
    """D-STM-style: one column per feature with a check mark where the rung has it, then J&F."""
    features = list(result.ladder.features) or sorted({f for r in result.rungs for f in r.features})
    rows = []
    for r in result.rungs:
        row = {f: (CHECK if f in r.features else "") for f in features}
        row["J&F"] = _pct(r.metrics.get(metric))
        rows.append(row)
    return pd.DataFrame(rows, index=[r.name for r in result.rungs])


def full_table(result: LadderResult) -> pd.DataFrame:
    """Challenge-style: Global Mean, J Mean/Recall/Decay, F Mean/Recall/Decay, and any subsets."""
    rows = []
    subsets = sorted({s for r in result.rungs for s in r.subsets})
    for r in result.rungs:
        row: dict[str, object] = {"Rung": r.name}
        names = {"J&F-Mean": "Global Mean", "J-Mean": "J Mean", "J-Recall": "J Recall", "J-Decay": "J Decay",
                 "F-Mean": "F Mean", "F-Recall": "F Recall", "F-Decay": "F Decay"}
        for k in METRIC_KEYS:
            row[names[k]] = _pct(r.metrics.get(k))
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
    series = {"all videos": [_pct(r.metrics.get(metric)) or 0.0 for r in result.rungs]}
    for s in sorted({s for r in result.rungs for s in r.subsets}):
        series[s] = [_pct(r.subsets.get(s, {}).get(metric)) or 0.0 for r in result.rungs]
    x = np.arange(len(names))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(names)), 4), dpi=120)
    for i, (label, vals) in enumerate(series.items()):
        bars = ax.bar(x + (i - (len(series) - 1) / 2) * width, vals, width, label=label)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(x, names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(f"{metric} (%)")
    ax.set_title(result.ladder.name)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def write_tables(result: LadderResult, out: str | os.PathLike) -> dict[str, Path]:
    """Write boost/checkmark/full tables as .md, .tex and .csv, and ``ladder.png``; return the paths."""
    out = Path(out)
    written: dict[str, Path] = {}
    tables = {
        "boost": (boost_table(result), False),
        "checkmarks": (checkmark_table(result), True),
        "full": (full_table(result), False),
    }
    for name, (df, index) in tables.items():
        for ext, text in (("md", to_markdown(df, index)), ("tex", to_latex(df, index))):
            p = out / f"{name}.{ext}"
            atomic_write_text(p, text)
            written[f"{name}.{ext}"] = p
        p = out / f"{name}.csv"
        atomic_write_text(p, df.to_csv(index=index))
        written[f"{name}.csv"] = p
    p = out / "ladder.png"
    bar_chart(result, p)
    written["ladder.png"] = p
    return written
