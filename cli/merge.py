"""`vosbench merge`: average saved probabilities (`infer --save-probs` folders, or another method's in that format) into masks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from vosbench_cli.common import console, handle_errors, progress_bar


def merge_cmd(
    folders: Annotated[list[str], typer.Argument(
        help="Folders of saved probabilities, DIR or DIR:WEIGHT (DIR/<seq>/probs/<frame>.npz; weights default to 1).")],
    out: Annotated[Path, typer.Option("--out", help="Output folder: <out>/<seq>/<frame>.png masks.")],
    save_probs: Annotated[bool, typer.Option(
        "--save-probs", help="Also save the merged probabilities (<out>/<seq>/probs/<frame>.npz), to merge again.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Redo sequences that are already in --out.")] = False,
) -> None:
    """Average the saved probabilities of several runs (weighted) and write the argmax masks.

    Each folder holds <seq>/probs/<frame>.npz as `vosbench infer --save-probs` writes them (uint8 K+1 channels, background first, then the objects in `object_ids` order; see docs/probabilities.md), so another method's probabilities exported in that format merge with vosbench's. The result equals `vosbench infer --ensemble` of the same members up to the uint8 rounding of the saved probabilities; a sequence appears in --out only once complete.

    Example: vosbench merge runs/scm/val runs/dstm/val:0.5 --out runs/merged/val
    """
    with handle_errors():
        from vosbench.infer.probs import merge_folders
        from vosbench.infer.recipe import parse_ensemble
        from vosbench.outlock import out_lock

        members = []
        for spec in folders:
            (member,) = parse_ensemble(spec).members  # DIR[:WEIGHT], parsed as --ensemble parses it
            members.append((member.checkpoint, member.weight))
        with out_lock(out, "merge"), progress_bar(transient=True) as progress:
            summary = merge_folders(members, out, save_probs=save_probs, overwrite=overwrite, progress=progress)
    console.print(f"merged: {', '.join(escape(m) for m in summary.members)}", highlight=False, soft_wrap=True)
    console.print(
        f"{len(summary.sequences)} sequences written ({summary.frames} frames), {len(summary.skipped)} skipped, "
        f"into {escape(str(summary.out))}",
        highlight=False, soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    app.command("merge")(merge_cmd)
