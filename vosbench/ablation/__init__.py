"""Ablation ladders: run a sequence of configs (train → infer → evaluate, each step cached by a
content hash) and build the papers' tables (SCM-style Boost column, D-STM-style checkmarks)."""

from vosbench.ablation.ladder import LadderConfig, RungSpec, load_ladder, with_precision
from vosbench.ablation.runner import LadderResult, RungResult, StepRunner, run_ladder
from vosbench.ablation.tables import boost_table, checkmark_table, full_table, write_tables

__all__ = [
    "LadderConfig",
    "LadderResult",
    "RungResult",
    "RungSpec",
    "StepRunner",
    "boost_table",
    "checkmark_table",
    "full_table",
    "load_ladder",
    "run_ladder",
    "with_precision",
    "write_tables",
]
