"""`vosbench prepare synthetic`: generate the embedded procedural DAVIS-layout dataset."""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vosbench_cli.common import console, handle_errors, progress_bar
from vosbench.data.synthetic import PROFILES, generate_synthetic, summarise_manifest

ProfileName = Enum("ProfileName", {name: name for name in PROFILES}, type=str)  # tiny, small, davis


def synthetic(
    root: Annotated[Path, typer.Option("--root", "--data", help="Folder to create (replaced if it holds a synthetic dataset).")],
    profile: Annotated[
        ProfileName, typer.Option("--profile", help="tiny: tests (seconds); small: CPU training; davis: DAVIS-val shape.")
    ] = "small",  # type: ignore[assignment]
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed; same seed and profile give the same bytes.")] = 0,
    lookalike: Annotated[
        float | None, typer.Option("--lookalike", help="Share of videos with look-alike objects, 0..1 (default: profile's).")
    ] = None,
    videos: Annotated[int | None, typer.Option("--videos", help="Total videos, shared between splits as the profile does.")] = None,
    frames: Annotated[int | None, typer.Option("--frames", help="Frames per video (default: profile's range).")] = None,
    size: Annotated[str | None, typer.Option("--size", help="Frame size HxW, e.g. 240x432.")] = None,
) -> None:
    """Generate procedural videos with depth and look-alike instances in the DAVIS-2017 layout.

    Writes JPEGImages/480p, Annotations/480p (every frame for train/val, the first only for test-dev), Depth/480p (16-bit), ImageSets/2017/*.txt and manifest.json (per-video look-alike groups, crossing frames, occlusions, exits). The folder appears only when complete.

    Example: vosbench prepare synthetic --root data/synthetic --profile small --seed 0 --lookalike 0.4
    """
    start = time.perf_counter()
    with handle_errors(), progress_bar() as progress:
        manifest = generate_synthetic(root, profile.value, seed=seed, lookalike=lookalike, videos=videos,
                                      frames=frames, size=size, progress=progress)
    rows = summarise_manifest(manifest)
    table = Table(title=f"synthetic ({profile.value}, seed {seed}) in {root} — {time.perf_counter() - start:.1f} s")
    for key in rows[0]:
        table.add_column(key, justify="left" if key in ("split", "size", "masks") else "right",
                         no_wrap=key in ("split", "size"))
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    console.print(table)


def register(prepare_app: typer.Typer) -> None:
    prepare_app.command("synthetic")(synthetic)
