"""`vosbench convert`: checkpoints of other codebases (the released STM weights) -> vosbench checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vosbench_cli.common import console, handle_errors


def convert(
    weights: Annotated[Path, typer.Argument(help="The checkpoint to convert (e.g. STM_weights.pth).")],
    out: Annotated[Path, typer.Option("--out", help="The vosbench checkpoint to write (.pt).")],
    fmt: Annotated[str, typer.Option("--format", help="Layout of WEIGHTS: stm (seoungwugoh/STM's STM_weights.pth).")] = "stm",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace OUT if it exists.")] = False,
) -> None:
    """Convert another codebase's checkpoint into a vosbench checkpoint.

    --format stm reads the released STM weights (nn.DataParallel(STM()).state_dict()) and writes a checkpoint of preset stm-r50 that `infer --checkpoint`, `--ensemble` recipes and `train.init_checkpoint` accept. Every tensor of WEIGHTS is used; any other layout is refused with the first missing or unexpected key, and nothing is written.

    Example: vosbench convert STM_weights.pth --format stm --out checkpoints/stm-r50-released.pt
    """
    from vosbench.models.convert import convert_checkpoint  # torch loads only when the verb runs

    with handle_errors():
        path = convert_checkpoint(weights, fmt, out, overwrite=overwrite)
    console.print(f"wrote {path} (preset stm-r50, from {fmt} layout {weights.name})", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("convert")(convert)
