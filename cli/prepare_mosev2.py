"""`vosbench prepare mosev2`: extract MOSEv2 archives (zip or tar.gz), validate, describe."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vosbench_cli.common import console, handle_errors, progress_bar
from vosbench_cli.prepare_davis import summary_table
from vosbench.data.mosev2 import prepare_mosev2
from vosbench.data.prepare import manifest_summary


def mosev2(
    root: Annotated[
        Path, typer.Option("--root", "--data", help="Dataset root to create or add to (train/, valid/, test/ go here).")
    ],
    archive: Annotated[
        list[Path],
        typer.Option("--archive", help="A MOSEv2 archive (e.g. train.tar.gz, valid.tar.gz, or a zip); repeat for several."),
    ],
    quick: Annotated[
        bool, typer.Option("--quick", help="Decode only the first annotation of each video, not every frame and mask."),
    ] = False,
) -> None:
    """Extract MOSEv2 archives safely into ROOT/{train,valid,test}, validate them, write ROOT/manifest.json.

    Each split needs <split>/meta.json with every video's length and objects, and
    <split>/{JPEGImages,Annotations}/<video>/ (train: every frame annotated; valid, test: the first).
    Every member name is checked before anything is written, links are refused, and nothing is
    moved into ROOT until every archive given has been checked.

    Example: vosbench prepare mosev2 --root data/mosev2 --archive train.tar.gz --archive valid.tar.gz
    """
    with handle_errors(), progress_bar() as progress:
        manifest = prepare_mosev2(root, archive, progress, full=not quick)
    console.print(summary_table(f"MOSEv2 in {root}", manifest_summary(manifest)))
    console.print(f"manifest: {root / 'manifest.json'}", highlight=False)


def register(prepare_app: typer.Typer) -> None:
    prepare_app.command("mosev2")(mosev2)
