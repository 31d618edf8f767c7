"""`vosbench evaluate`: DAVIS J&F (mean, recall, decay), identical to the official toolkit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cli.common import console, handle_errors, progress_bar
from vosbench.metrics import EvaluationResult, evaluate_results
from vosbench.metrics.summary import GlobalSummary


def _global_table(result: EvaluationResult) -> Table:
    table = Table(title=f"DAVIS-2017 {result.split} ({result.resolution}): global, {len(result.objects)} objects")
    for col in GlobalSummary.COLUMNS:
        table.add_column(col, justify="right")
    table.add_row(*(f"{v:.3f}" for v in result.summary.values()))
    return table


def _sequence_table(result: EvaluationResult) -> Table:
    table = Table(title="per sequence (one row per object)")
    table.add_column("Sequence", overflow="fold")
    for col in ("J&F-Mean", "J-Mean", "F-Mean", "J-Recall", "F-Recall", "J-Decay", "F-Decay"):
        table.add_column(col, justify="right")
    for o in result.objects:
        table.add_row(
            escape(o.name),
            f"{(o.j.mean + o.f.mean) / 2:.3f}",
            f"{o.j.mean:.3f}",
            f"{o.f.mean:.3f}",
            f"{o.j.recall:.3f}",
            f"{o.f.recall:.3f}",
            f"{o.j.decay:.3f}",
            f"{o.f.decay:.3f}",
        )
    return table


def evaluate_cmd(
    data: Annotated[Path, typer.Option("--data", help="DAVIS-layout dataset root (Annotations, ImageSets).")],
    results: Annotated[
        Path, typer.Option("--results", help="Predicted masks: a folder RESULTS/<seq>/<frame>.png or a submission .zip.")
    ],
    split: Annotated[str, typer.Option("--split", help="Split listed in ROOT/ImageSets/2017/<split>.txt.")] = "val",
    resolution: Annotated[str, typer.Option("--resolution", help="480p or Full-Resolution.")] = "480p",
    workers: Annotated[
        int | None, typer.Option("--workers", "-j", min=1, help="Worker processes (default: CPU count, at most 8; 1 = in-process).")
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write full-precision per-object and per-frame values here.")
    ] = None,
    ignore_extra_ids: Annotated[
        bool,
        typer.Option("--ignore-extra-ids", help="Score predicted ids above the GT's object count as background instead of failing."),
    ] = False,
) -> None:
    """Score predicted masks with the DAVIS-2017 semi-supervised J&F, as the official toolkit does.

    Writes global_results-<split>.csv and per-sequence_results-<split>.csv (official names and
    columns, 3 decimals) into RESULTS (next to it for a zip); always recomputes. Frames 1..T-2 are
    scored; objects are ids 1..max id of the first annotation. Every missing file is listed.

    One deliberate difference: the official toolkit stores the decay bin edges as uint8, so its
    J-/F-Decay is NaN (or wrong) for objects with 256 or more scored frames; here it is right for
    any length (identical up to 255 frames).

    Example: vosbench evaluate --data data/davis --results runs/stm/val --split val --json runs/stm/val.json
    """
    with handle_errors(), progress_bar(transient=True) as progress:
        result = evaluate_results(
            data,
            results,
            split,
            resolution,
            workers=workers,
            ignore_extra_ids=ignore_extra_ids,
            progress=progress,
            json_path=json_path,
        )
    console.print(_sequence_table(result))
    console.print(_global_table(result))
    for path in result.written:
        console.print(f"wrote {escape(str(path))}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_cmd)
