"""`vosbench ablate`: run an ablation ladder and print the papers' tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vosbench_cli.common import console, handle_errors, progress_bar
from vosbench.precision import DEVICE_HELP, PRECISION_HELP


def _render(df, title: str, index: bool = False) -> Table:
    table = Table(title=title, title_justify="left")
    cols = ([df.index.name or ""] if index else []) + [str(c) for c in df.columns]
    for c in cols:
        table.add_column(c, justify="left" if c in ("", "Methods", "Rung") else "right")
    for idx, row in df.iterrows():
        cells = [str(idx)] if index else []
        cells += ["–" if v is None or v != v else (f"{v:.1f}" if isinstance(v, float) else str(v)) for v in row.tolist()]
        table.add_row(*cells)
    return table


def ablate(
    config: Annotated[Path, typer.Option("--config", help="Ladder TOML (see ablations/).")],
    *,
    data: Annotated[Path | None, typer.Option("--data", help="Dataset root for every rung's training (replacing its configs' datasets) and evaluation (default: the ladder file's data entry, for evaluation).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output folder (default: runs/ablate/<ladder name>).")] = None,
    cache: Annotated[Path, typer.Option("--cache", help="Step cache shared by ladders (checkpoints, masks, metrics).")] = Path(
        "runs/ablate/cache"
    ),
    device: Annotated[str | None, typer.Option("--device", help=DEVICE_HELP + " Default: the ladder's (auto).")] = None,
    precision: Annotated[str | None, typer.Option(
        "--precision", help=PRECISION_HELP + " Applies to every rung's training and inference (default: each "
                                             "rung's own, auto).")] = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps", help="Cap training steps of every rung.")] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Evaluation processes.")] = None,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Train every training rung this many times (train.seed 0..N-1, each cached); tables show mean ± std and the Boost's 95 % t-interval.")] = 1,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a training-config key in every rung's training (repeatable), e.g. --set train.batch_size=1.")] = None,
    allow_random_init: Annotated[bool, typer.Option("--allow-random-init", help="Let backbones start random (see `vosbench train --allow-random-init`).")] = False,
) -> None:
    """Train, infer and evaluate every rung of a ladder (each step cached), then print the tables.

    Example: vosbench ablate --config ablations/scm-cpu.toml --data runs/data/small
    """
    from vosbench.ablation import (
        boost_table,
        caption,
        checkmark_table,
        full_table,
        load_ladder,
        run_ladder,
        with_precision,
        write_tables,
    )
    from vosbench.ablation.steps import VosbenchSteps
    from vosbench.errors import ConfigError
    from vosbench.precision import resolve_numerics

    with handle_errors():
        ladder = with_precision(load_ladder(config), precision)
        root = data or ladder.data
        if root is None:
            raise ConfigError(f"{config}: no dataset root; pass --data ROOT or set [ladder].data")
        out_dir = out or Path("runs") / "ablate" / ladder.name
        numerics = resolve_numerics(device or ladder.device, precision or "auto")  # a bad pair fails here
        steps = VosbenchSteps(root, ladder.split, ladder.resolution, str(numerics.device), max_steps, workers,
                              replace_data=data is not None, overrides=list(set_ or []),
                              allow_random_init=allow_random_init)
        note = steps.fit_note(ladder.rungs)
        if note:
            console.print(note, highlight=False, soft_wrap=True)
        with progress_bar() as progress:
            result = run_ladder(ladder, out_dir, steps, progress, cache=cache, seeds=seeds)
        written = write_tables(result, out_dir)
    console.print(_render(boost_table(result), f"{ladder.name}: Global Mean (J&F) and Boost"))
    if any("look-alike" in r.subsets for r in result.rungs):
        console.print(_render(boost_table(result, subset="look-alike"), "look-alike videos only"))
    console.print(_render(checkmark_table(result), "components", index=True))
    console.print(_render(full_table(result), "full table"))
    if seeds > 1:
        console.print(caption(result))
    cached = sum(1 for r in result.rungs for v in r.ran.values() if not v)
    console.print(f"tables and chart in [bold]{out_dir}[/] ({', '.join(sorted(written))}); {cached} cached steps reused")
    console.print(f"device {numerics.device}, precision {precision or 'per rung (auto: ' + numerics.precision + ' here)'}",
                  highlight=False)


def register(app: typer.Typer) -> None:
    app.command("ablate")(ablate)
