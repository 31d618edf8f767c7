"""`vosbench dataset-info`: what a DAVIS-layout split holds, as a table and a contact sheet."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vosbench_cli.common import console, handle_errors
from vosbench.data.overview import contact_sheet, describe_split


def _flag(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def dataset_info(
    data: Annotated[Path, typer.Option("--data", help="Dataset root in the DAVIS-2017 layout.")],
    split: Annotated[str, typer.Option("--split", help="Split to describe (ImageSets/2017/<split>.txt).")] = "val",
    resolution: Annotated[str, typer.Option("--resolution", help="480p or Full-Resolution.")] = "480p",
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Contact sheet PNG to write (first frames with masks overlaid); "
                                   "default: contact-sheet-<data>-<split>.png in the current folder."),
    ] = None,
    sheet_wanted: Annotated[bool, typer.Option("--sheet/--no-sheet", help="Write the contact sheet.")] = True,
    max_sequences: Annotated[int, typer.Option("--max-sequences", min=1, help="Tiles on the contact sheet.")] = 48,
) -> None:
    """Print the sequences of a split (frames, objects, look-alike flags) and draw a contact sheet PNG.

    Look-alike, distractor, exit and occlusion columns come from a synthetic dataset's manifest.json ("-" when unknown).

    Example: vosbench dataset-info --data data/synthetic --split val --out contact.png
    """
    if out is None:
        out = Path(f"contact-sheet-{data.resolve().name or 'data'}-{split}.png")
    with handle_errors():
        infos = describe_split(data, split, resolution)
        sheet = contact_sheet(data, out, split, resolution, max_sequences=max_sequences) if sheet_wanted else None
    table = Table(title=f"{data} — {split} ({resolution}): {len(infos)} sequences")
    for col in ("sequence", "frames", "annotated", "size", "objects", "depth", "look-alike", "distractors",
                "exits", "occlusions"):
        table.add_column(col, justify="left" if col in ("sequence", "size", "objects", "look-alike") else "right",
                         no_wrap=col in ("sequence", "size"))
    for i in infos:
        la = _flag(i.lookalike)
        if i.lookalike:
            la += f" ({','.join(map(str, i.lookalike_ids))})"
        table.add_row(i.name, str(i.frames), str(i.annotated_frames), f"{i.height}x{i.width}",
                      ",".join(map(str, i.object_ids)), _flag(i.depth), la,
                      *("-" if v is None else str(v) for v in (i.distractors, i.exits, i.occlusions)))
    console.print(table)
    n_la = sum(1 for i in infos if i.lookalike)
    console.print(f"{sum(i.frames for i in infos)} frames, {sum(len(i.object_ids) for i in infos)} objects, "
                  f"{n_la} look-alike videos")
    if sheet is not None:
        console.print(f"contact sheet: {sheet}")


def register(app: typer.Typer) -> None:
    app.command("dataset-info")(dataset_info)
