"""`vosbench prepare sav`: extract SA-V val/test archives safely, validate, describe."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vosbench_cli.common import console, handle_errors, progress_bar
from vosbench_cli.prepare_davis import summary_table
from vosbench.data.prepare import manifest_summary
from vosbench.data.prepare_sav import prepare_sav


def sav(
    root: Annotated[Path, typer.Option("--root", "--data", help="Dataset root to create or add to (sav_<split>.txt, "
                                                                 "JPEGImages_24fps/, Annotations_6fps/ go here).")],
    archive: Annotated[list[Path], typer.Option(
        "--archive", help="An SA-V archive (sav_val.tar, sav_test.tar, or a zip of the same tree); repeat for several.")],
    quick: Annotated[bool, typer.Option("--quick", help="Check the layout only; do not decode every mask.")] = False,
) -> None:
    """Extract SA-V val/test archives safely into ROOT, validate them, write ROOT/manifest.json.

    Each object is a folder of binary masks on every 4th frame (objects may overlap); evaluate
    with --task sav, infer writes the same per-object layout. Nothing is moved into ROOT until
    every archive given has been checked.

    Example: vosbench prepare sav --root data/sav --archive sav_val.tar --archive sav_test.tar
    """
    with handle_errors(), progress_bar() as progress:
        manifest = prepare_sav(root, archive, progress, full=not quick)
    rows = [{"split": r["split"], "videos": r["sequences"], "frames": r["frames"], "annotated": r["annotated"],
             "objects": r["objects"]} for r in manifest_summary(manifest)]
    console.print(summary_table(f"SA-V in {root}", rows))
    console.print(f"manifest: {root / 'manifest.json'}", highlight=False)


def register(prepare_app: typer.Typer) -> None:
    prepare_app.command("sav")(sav)
