"""Ablation ladders: run a sequence of configs (train → infer → evaluate, each step cached by a
content hash) and build the papers' tables (SCM-style Boost column, D-STM-style checkmarks)."""

from vosbench.ablation.ladder import LadderConfig, RungSpec, load_ladder, with_precision
from vosbench.ablation.runner import LadderResult, RungResult, StepRunner, run_ladder
from vosbench.ablation.stats import boost_intervals, rung_values, seed_summary, seed_values
from vosbench.ablation.tables import (
    boost_table,
    caption,
    checkmark_table,
    full_table,
    subset_boost_table,
    write_tables,
)

__all__ = [
    "LadderConfig",
    "LadderResult",
    "RungResult",
    "RungSpec",
    "StepRunner",
    "boost_intervals",
    "boost_table",
    "caption",
    "checkmark_table",
    "full_table",
    "load_ladder",
    "run_ladder",
    "rung_values",
    "seed_summary",
    "seed_values",
    "subset_boost_table",
    "with_precision",
    "write_tables",
]
