"""`vosbench prepare static`: normalise MSRA10K / VOC / COCO archives into images + instance masks."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from vosbench_cli.common import console, handle_errors, progress_bar
from vosbench_cli.prepare_davis import summary_table
from vosbench.data.static import prepare_static, static_summary


class StaticFormat(str, Enum):
    msra10k = "msra10k"
    voc = "voc"
    coco = "coco"


def static(
    root: Annotated[
        Path, typer.Option("--root", "--data", help="Folder to create (replaced as a whole if it exists).")
    ],
    archive: Annotated[Path, typer.Option("--archive", help="The source zip.")],
    format: Annotated[
        StaticFormat,
        typer.Option(
            "--format",
            help="msra10k: jpg + binary png pairs; voc: JPEGImages + SegmentationObject; coco: instances json.",
        ),
    ],
) -> None:
    """Normalise a static image set into ROOT/images/*.jpg + ROOT/masks/*.png (palette instance ids 1..N, 255 void) for pretraining.

    Every image is decoded and every mask checked against its image's size before ROOT is written (atomically). COCO crowd regions become void; VOC boundaries (255) stay void.

    Example: vosbench prepare static --root data/static/msra10k --archive MSRA10K_Imgs_GT.zip --format msra10k
    """
    with handle_errors(), progress_bar() as progress:
        manifest = prepare_static(root, archive, format.value, progress)
    console.print(summary_table(f"static set in {root}", static_summary(manifest)))
    console.print(f"manifest: {root / 'manifest.json'}", highlight=False)


def register(prepare_app: typer.Typer) -> None:
    prepare_app.command("static")(static)
