"""`vosbench prepare youtube-vos`: extract YouTube-VOS 2019 train/valid zips, validate, describe."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vosbench_cli.common import console, handle_errors, progress_bar
from vosbench_cli.prepare_davis import summary_table
from vosbench.data.youtube import prepare_youtube_vos, youtube_summary


def youtube_vos(
    root: Annotated[
        Path, typer.Option("--root", "--data", help="Dataset root to create or add to (train/ and valid/ go here).")
    ],
    archive: Annotated[
        list[Path],
        typer.Option(
            "--archive", help="A YouTube-VOS 2019 zip (train.zip, valid.zip or test.zip); repeat for several."
        ),
    ],
    quick: Annotated[
        bool,
        typer.Option("--quick", help="Decode only the first-appearance masks, not every frame and mask."),
    ] = False,
) -> None:
    """Extract YouTube-VOS 2019 archives safely into ROOT/{train,valid}, validate them, write ROOT/manifest.json.

    Objects may first appear after frame 0; the manifest records each object's first-appearance frame. Nothing is moved into ROOT until every archive given has been checked.

    Example: vosbench prepare youtube-vos --root data/ytvos --archive train.zip --archive valid.zip
    """
    with handle_errors(), progress_bar() as progress:
        manifest = prepare_youtube_vos(root, archive, progress, full=not quick)
    console.print(summary_table(f"YouTube-VOS 2019 in {root}", youtube_summary(manifest)))
    console.print(f"manifest: {root / 'manifest.json'}", highlight=False)


def register(prepare_app: typer.Typer) -> None:
    prepare_app.command("youtube-vos")(youtube_vos)
