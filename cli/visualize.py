"""`vosbench visualize`: overlays, an MP4 per sequence and per-frame J/F plots of a results folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vosbench_cli.common import console, handle_errors, progress_bar, score
from vosbench.visualize import VisualizeOptions, default_out_dir, mean_jf, visualize_results


def visualize_cmd(
    results: Annotated[
        Path,
        typer.Option(
            "--results", help="Folder of predicted masks (RESULTS/<seq>/00000.png) or a submission zip."
        ),
    ],
    data: Annotated[Path, typer.Option("--data", help="DAVIS-layout dataset root (frames, ground truth).")],
    split: Annotated[str, typer.Option("--split", help="Split the results are for.")] = "val",
    seq: Annotated[list[str] | None, typer.Option("--seq", help="Only this sequence (repeatable).")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default: RESULTS-vis beside RESULTS).")
    ] = None,
    resolution: Annotated[str, typer.Option("--resolution", help="480p or Full-Resolution.")] = "480p",
    alpha: Annotated[float, typer.Option("--alpha", help="Mask opacity over the frame, 0..1.")] = 0.5,
    fps: Annotated[float, typer.Option("--fps", help="Frame rate of the MP4.")] = 12.0,
    video: Annotated[bool, typer.Option("--video/--no-video", help="Write an MP4 per sequence.")] = True,
    frames: Annotated[
        bool, typer.Option("--frames/--no-frames", help="Also write the overlaid frames as PNGs (~0.5 MB a 480p frame).")
    ] = False,
    compare: Annotated[bool, typer.Option(
        "--compare", help="Ground truth (left) beside the prediction (right) with its error pixels painted: false "
                          "positives magenta, false negatives cyan, another object yellow (needs GT on every frame).")] = False,
) -> None:
    """Overlay predicted masks on the frames (DAVIS colours, object outlines) and plot per-frame J/F.

    Writes OUT/<seq>/<seq>.mp4 (H.264) and, where the ground truth covers every frame, OUT/<seq>/<seq>_jf.png
    (J and F per frame, %); OUT/<seq>/frames/*.png with --frames.

    Example: vosbench visualize --results runs/quickstart/results --data runs/quickstart/data --seq val-000 --compare
    """
    with handle_errors():
        options = VisualizeOptions(alpha=alpha, fps=fps, video=video, frames=frames, compare=compare)
        with progress_bar(transient=True) as progress:
            written = visualize_results(
                results,
                data,
                split,
                sequences=seq,
                out_dir=out,
                resolution=resolution,
                options=options,
                progress=progress,
            )
    table = Table(
        title=f"visualized {len(written)} sequence{'s' * (len(written) != 1)} -> "
        f"{out or default_out_dir(results)}"
    )
    for col in ("sequence", "frames", "size", "J-Mean %", "F-Mean %", "video", "J/F plot"):
        table.add_column(col, justify="right" if col in ("frames", "J-Mean", "F-Mean") else "left")
    for v in written:
        j, f = mean_jf(v.scores) if v.scores is not None else (None, None)
        table.add_row(
            v.name,
            str(v.num_frames),
            f"{v.size[1]}x{v.size[0]}",
            score(j) if j is not None else "-",
            score(f) if f is not None else "-",
            v.video.name if v.video else "-",
            v.plot.name if v.plot else "- (no GT)",
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("visualize")(visualize_cmd)
