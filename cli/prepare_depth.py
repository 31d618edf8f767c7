"""`vosbench prepare depth`: per-frame 16-bit depth maps for a split (D-STM input)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from vosbench_cli.common import console, handle_errors, progress_bar
from vosbench.precision import DEVICE_HELP

EXAMPLE = (
    "Example: vosbench prepare depth --data data/DAVIS --split val "
    "--estimator depth-anything/Depth-Anything-V2-Small-hf --device cuda"
)


def prepare_depth_cmd(
    *,
    data: Annotated[Path, typer.Option(
        "--data", help="DAVIS-layout dataset root (Depth/<res>/ is written inside it), or a `prepare static` "
                       "set (depth/ is written inside it; --split and --resolution do not apply).")],
    estimator: Annotated[str, typer.Option(
        "--estimator",
        help="A transformers depth model: a local folder (save_pretrained output) or a hub id "
             "(needs internet once); or folder:PATH to import maps computed elsewhere "
             "(PATH/<seq>/<frame>.png 8/16-bit or .npy).",
    )],
    split: Annotated[str, typer.Option("--split", help="Split name (ImageSets/2017/<split>.txt).")] = "val",
    resolution: Annotated[str, typer.Option("--resolution", help="480p or Full-Resolution.")] = "480p",
    device: Annotated[str, typer.Option("--device", help=DEVICE_HELP)] = "auto",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Frames per forward pass.")] = 4,
    depth_kind: Annotated[str, typer.Option(
        "--depth-kind",
        help="What the estimator outputs: auto (models: Depth Anything/DPT = disparity, "
             "GLPN/ZoeDepth/metric = depth; folder: depth), disparity (larger = nearer) or depth.",
    )] = "auto",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Redo sequences that are already finished.")] = False,
) -> None:
    """Estimate a depth map for every frame, normalised per video to 16-bit PNGs in ROOT/Depth/<res>/.

    Finished sequences are skipped on re-run; each sequence appears only once complete. For a static
    image set (D-STM pretraining) every image gets ROOT/depth/<name>.png, normalised per image.
    """
    with handle_errors():
        from vosbench.data.davis import DavisDataset
        from vosbench.data.static import StaticImageSet
        from vosbench.depth.estimators import make_estimator
        from vosbench.depth.prepare import is_static_set, prepare_depth, prepare_static_depth
        from vosbench.errors import DataError

        static = is_static_set(data)
        if static:  # a wrong --data fails before a model loads
            if not len(StaticImageSet(data)):
                raise DataError(f"{data}: the static set has no images")
        else:
            _ = DavisDataset(data, split, resolution).sequence_names
        _quiet_transformers()
        est = make_estimator(estimator, device=device, batch_size=batch_size, kind=depth_kind)  # type: ignore[arg-type]
        with progress_bar() as progress:
            if static:
                summary = prepare_static_depth(data, est, overwrite=overwrite, progress=progress)
            else:
                summary = prepare_depth(data, split, resolution, est, overwrite=overwrite, progress=progress)

    table = Table(title=escape(f"depth maps: {summary.depth_dir}"))
    for col in ("sequence", "frames", "status", "seconds", "range (raw)", "note"):
        table.add_column(col, justify="right" if col in ("frames", "seconds") else "left")
    for s in summary.sequences:
        rng = f"{s.low:.4g} .. {s.high:.4g}" if s.low is not None and s.high is not None else ""
        secs = f"{s.seconds:.1f}" if s.status == "written" else ""
        table.add_row(escape(s.name), str(s.frames), s.status, secs, rng, escape(s.note))
    console.print(table)
    console.print(
        f"{len(summary.written)} written ({summary.frames_written} frames, "
        f"{summary.frames_per_second:.2f} frames/s), {len(summary.skipped)} skipped"
        + (f"; estimated on {est.device}" if getattr(est, "device", None) else "")
    )


def _quiet_transformers() -> None:
    """Hide transformers' own weight-loading progress bars (ours is shown instead)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    hf_logging.disable_progress_bar()


def register(prepare_app: typer.Typer) -> None:
    prepare_app.command("depth", help=(prepare_depth_cmd.__doc__ or "") + "\n\n" + EXAMPLE)(prepare_depth_cmd)
