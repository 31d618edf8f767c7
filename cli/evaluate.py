"""`vosbench evaluate`: J&F (mean, recall, decay) of DAVIS-2017 (identical to the official toolkit),
DAVIS-2016, late objects, YouTube-VOS, MOSE, LVOS, MOSEv2 and SA-V (per-object masks, as SAM 2's evaluator)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from vosbench_cli.common import console, handle_errors, progress_bar, score
from vosbench.metrics import EvaluationResult, evaluate_results
from vosbench.metrics.benchmarks import RULES, TASKS, TITLES

Task = Enum("Task", {name.replace("-", "_"): name for name in ("auto", *TASKS)}, type=str)  # type: ignore[misc]


def _row_table(title: str, values: dict[str, float]) -> Table:
    table = Table(title=title)
    for col in values:
        table.add_column(col, justify="right")
    table.add_row(*(score(v) for v in values.values()))
    return table


def _global_table(result: EvaluationResult) -> Table:
    title = f"{TITLES[result.task]} {result.split} ({result.resolution}): global, {len(result.objects)} objects (%)"
    return _row_table(title, result.summary.as_dict())


def _sequence_table(result: EvaluationResult) -> Table:
    table = Table(title="per sequence (one row per object, %)")
    table.add_column("Sequence", overflow="fold")
    for col in ("J&F-Mean", "J-Mean", "F-Mean", "J-Recall", "F-Recall", "J-Decay", "F-Decay"):
        table.add_column(col, justify="right")
    for o in result.objects:
        table.add_row(
            escape(o.name),
            *(score(v) for v in ((o.j.mean + o.f.mean) / 2, o.j.mean, o.f.mean, o.j.recall, o.f.recall,
                                 o.j.decay, o.f.decay)),
        )
    return table


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def _mosev2_tables(result: EvaluationResult) -> tuple[Table, Table]:
    """MOSEv2: per object and global, in percent under the scorer's names, J&F_new (J&Ḟ) first."""
    names = ("J&F_new", "J", "F_new", "disappear_J&F_new", "reappear_J&F_new", "F", "J&F")
    headers = ("J&F_new", "J", "F_new", "disappear", "reappear", "F", "J&F")
    note = "percent; F_new: the area-adaptive boundary F; disappear/reappear: J&F_new over those segments"
    per_object = Table(title=f"per object ({note})")
    per_object.add_column("Object", overflow="fold")
    for col in headers:
        per_object.add_column(col, justify="right")
    for o in result.objects:
        v = result.object_extra[o.name]["mosev2"]
        per_object.add_row(escape(o.name), *(_pct(v[c]) for c in names))
    glob = Table(title=f"{TITLES[result.task]} {result.split}: global, {len(result.objects)} objects (percent)")
    for col in headers:
        glob.add_column(col, justify="right")
    glob.add_row(*(_pct(result.extra[c]) for c in names))
    return per_object, glob


def evaluate_cmd(
    data: Annotated[Path, typer.Option(
        "--data", help="Dataset root: DAVIS-2017/2016 (Annotations, ImageSets), YouTube-VOS (ROOT/<split>/meta.json), "
                       "MOSE (ROOT/<split>/JPEGImages, Annotations), MOSEv2 (the same plus ROOT/<split>/meta.json with lengths), "
                       "LVOS (ROOT/<split>/<split>_meta.json) or SA-V (ROOT/sav_<split>.txt, Annotations_6fps/<video>/<obj>/).")],
    results: Annotated[
        Path, typer.Option("--results", help="Predicted masks: a folder RESULTS/<seq>/<frame>.png (SA-V: "
                                         "RESULTS/<video>/<obj>/<frame>.png, one binary mask per object) or a submission .zip.")
    ],
    split: Annotated[str, typer.Option(
        "--split", help="Split: ImageSets/2017/<split>.txt (DAVIS-2016: ImageSets/480p/<split>.txt), or ROOT/<split>/.")] = "val",
    resolution: Annotated[str, typer.Option("--resolution", help="480p or Full-Resolution.")] = "480p",
    workers: Annotated[
        int | None, typer.Option("--workers", "-j", min=1, help="Worker processes (default: CPU count, at most 8; 1 = in-process).")
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write full-precision per-object and per-frame values here.")
    ] = None,
    ignore_extra_ids: Annotated[
        bool,
        typer.Option("--ignore-extra-ids", help="Score predicted ids that are not objects of the sequence as background instead of failing."),
    ] = False,
    task: Annotated[Task, typer.Option(
        "--task", help="Benchmark rules; auto detects them from the layout and the first annotations (grey 0/255 = DAVIS-2016; "
                       "objects annotated after the first frame = late).")] = Task.auto,  # type: ignore[attr-defined]
    allow_mixed: Annotated[bool, typer.Option(
        "--allow-mixed", help="Score a results folder whose sequences' provenance.json name different runs "
                              "(e.g. half old after a failed --overwrite) with a warning, instead of refusing it.")] = False,
) -> None:
    """Score predicted masks with semi-supervised J&F: DAVIS-2017 exactly as the official toolkit, and DAVIS-2016, late objects, YouTube-VOS, MOSE, LVOS and MOSEv2 (J&F_new, disappearance/reappearance, as its scorer) with their own rules.

    Prints percent (one decimal, as in the papers); writes global_results-<split>.csv and
    per-sequence_results-<split>.csv (official names and columns, fractions with 3 decimals) into RESULTS (next to it for a zip); always recomputes. DAVIS-2017:
    frames 1..T-2 are scored; objects are ids 1..max id of the first annotation. Every missing
    file is listed. Masks are read by their indices (palette, grey or 1-bit PNGs); the task used
    is printed.

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
            task=task.value,
            allow_mixed=allow_mixed,
        )
    if result.task == "mosev2":
        for table in _mosev2_tables(result):
            console.print(table)
    else:
        console.print(_sequence_table(result))
        console.print(_global_table(result))
    if result.extra and result.task not in ("mosev2", "sav"):  # SA-V's (percent) are the global J&F, J, F above
        console.print(_row_table(f"{TITLES[result.task]}: benchmark values", result.extra))
    how = f"detected: {result.detected}" if result.detected else "given with --task" if task.value != "auto" else "default"
    console.print(f"task: {TITLES[result.task]} ({how}); rule: {RULES[result.task]}", highlight=False, soft_wrap=True, markup=False)
    for path in result.written:
        console.print(f"wrote {escape(str(path))}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_cmd)
