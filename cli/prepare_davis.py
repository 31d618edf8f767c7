"""`vosbench prepare davis2017`: download or take an official DAVIS-2017 archive, extract, validate."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vosbench_cli.common import console, handle_errors, progress_bar
from vosbench.data.prepare import manifest_summary, prepare_davis2017


class ArchiveSplit(str, Enum):
    trainval = "trainval"
    test_dev = "test-dev"
    test_challenge = "test-challenge"


class Resolution(str, Enum):
    p480 = "480p"
    full = "Full-Resolution"


def summary_table(title: str, rows: list[dict]) -> Table:
    """A rich table with one column per key of ``rows``."""
    table = Table(title=title)
    for key in rows[0] if rows else ["split"]:
        table.add_column(key, justify="left" if key in ("split", "format") else "right")
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    return table


def davis2017(
    root: Annotated[
        Path, typer.Option("--root", "--data", help="Dataset root to create or add to (DAVIS-2017 layout).")
    ],
    split: Annotated[
        ArchiveSplit, typer.Option("--split", help="Which official archive.")
    ] = ArchiveSplit.trainval,
    resolution: Annotated[
        Resolution, typer.Option("--resolution", help="Frame resolution of the archive.")
    ] = Resolution.p480,
    archive: Annotated[
        Path | None, typer.Option("--archive", help="Use this local zip instead of downloading.")
    ] = None,
    url: Annotated[
        str | None, typer.Option("--url", help="Download from this URL instead of the official one.")
    ] = None,
    download_dir: Annotated[
        Path | None,
        typer.Option(
            "--download-dir", help="Where the downloaded zip is kept (default: the folder holding ROOT)."
        ),
    ] = None,
    sha256: Annotated[str | None, typer.Option("--sha256", help="Expected SHA-256 of the archive.")] = None,
) -> None:
    """Download (resumable), extract safely and validate a DAVIS-2017 archive; write ROOT/manifest.json.

    Archives unzip to DAVIS/, which is stripped; trainval, test-dev and test-challenge merge into one ROOT. Nothing is moved into ROOT until the whole archive has been checked (every frame and mask decoded). An interrupted download resumes on the next run.

    Example: vosbench prepare davis2017 --root data/davis --split trainval --resolution 480p

    Example (local zip): vosbench prepare davis2017 --root data/davis --split test-dev --archive DAVIS-2017-test-dev-480p.zip
    """
    with handle_errors(), progress_bar() as progress:
        manifest = prepare_davis2017(
            root,
            split.value,
            resolution.value,
            archive=archive,
            url=url,
            progress=progress,
            download_dir=download_dir,
            sha256=sha256,
        )
    console.print(summary_table(f"DAVIS-2017 {resolution.value} in {root}", manifest_summary(manifest)))
    console.print(f"manifest: {root / 'manifest.json'}", highlight=False)


def register(prepare_app: typer.Typer) -> None:
    prepare_app.command("davis2017")(davis2017)
