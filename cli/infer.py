"""`vosbench infer`: propagate first-frame masks through a split with one checkpoint or an ensemble."""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vosbench_cli.common import THREADS_HELP, console, handle_errors, progress_bar, set_threads
from vosbench.precision import DEVICE_HELP

EXAMPLE = (
    "Example: vosbench infer --checkpoint runs/scm/last.pt --data data/DAVIS --split val "
    "--out results/scm --flip --scales 0.75,1.0,1.25   |   "
    "vosbench infer --ensemble submissions/scm-davis2020.toml --data data/DAVIS --split test-dev --out results/entry   |   "
    "vosbench infer --checkpoint model.pt --video clip.mp4 --first-mask clip_00000.png --out clip_masks --overlay"
)


def _distributed(device: str) -> tuple[int, int, str]:
    """(rank, world size, device) from torchrun's or SLURM's environment; CUDA ranks use their local GPU."""
    import torch

    from vosbench.cluster import rank_device, world_from_env
    from vosbench.precision import resolve_device

    rank, world, local_rank = world_from_env(os.environ, arrays=True)
    device = str(resolve_device(device))
    visible = torch.cuda.device_count() if device.startswith("cuda") else 0
    return rank, world, rank_device(device, local_rank, world, visible)


def infer_cmd(
    *,
    out: Annotated[Path, typer.Option("--out", help="Output folder: <out>/<seq>/<frame>.png palette masks (with --video: <out>/<frame>.png).")],
    data: Annotated[Path | None, typer.Option("--data", help="DAVIS-layout dataset root, a YouTube-VOS 2019 or MOSEv2 root (ROOT/<split>/meta.json; MOSEv2 results: OUT/<video>/<frame>.png, every frame) "
                                                                  "or an SA-V root (ROOT/sav_<split>.txt; per-object results).")] = None,
    video: Annotated[Path | None, typer.Option(
        "--video", help="Instead of --data: one video file (mp4, mov, webm, ...) or a folder of jpg/png frames "
                        "(numeric order); needs --first-mask.")] = None,
    first_mask: Annotated[Path | None, typer.Option(
        "--first-mask", help="With --video: the id mask of the first frame (palette PNG, or grey PNG of ids; "
                             "a 0/255 grey mask is one object), any number of objects.")] = None,
    mask_frame: Annotated[int, typer.Option(
        "--mask-frame", metavar="N", help="With --video: the frame (0-based) --first-mask belongs to; earlier "
                                          "frames are background.")] = 0,
    overlay: Annotated[bool, typer.Option(
        "--overlay", help="With --video: also write <out>/overlay.mp4 (H.264, the masks over the frames).")] = False,
    checkpoint: Annotated[Path | None, typer.Option(
        "--checkpoint",
        help="One model checkpoint (.pt), or hf:<hub id or save_pretrained folder> for a SAM 2.1 / EdgeTAM / "
             "SAM 3 tracker from transformers (e.g. hf:facebook/sam2.1-hiera-tiny; `vosbench models` lists them).")] = None,
    ensemble: Annotated[str | None, typer.Option(
        "--ensemble",
        help="Comma-separated checkpoints, hf: models or folders of saved probabilities (PATH or PATH:WEIGHT), or a recipe .toml (submissions/); "
             "probabilities are averaged (weighted) before the argmax.",
    )] = None,
    split: Annotated[str, typer.Option("--split", help="Split name (ImageSets/2017/<split>.txt; valid or train for YouTube-VOS).")] = "val",
    resolution: Annotated[str, typer.Option("--resolution", help="480p or Full-Resolution.")] = "480p",
    device: Annotated[str, typer.Option("--device", help=DEVICE_HELP)] = "auto",
    given: Annotated[str | None, typer.Option(
        "--given",
        help="Which annotations the run may read: 'first' = frame 0's only (DAVIS protocol; later annotations "
             "are ground truth and never opened); 'first-appearance' = each object's first annotated frame "
             "(YouTube-VOS protocol). Default: first-appearance on YouTube-VOS data, first otherwise.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Redo sequences that are already finished.")] = False,
    save_probs: Annotated[bool, typer.Option(
        "--save-probs", help="Also save <out>/<seq>/probs/<frame>.npz (uint8 probabilities) for later ensembling.")] = False,
    depth_estimator: Annotated[str | None, typer.Option(
        "--depth-estimator",
        help="For depth (D-STM) checkpoints on data without Depth/ maps: an estimator spec as in "
             "`vosbench prepare depth --estimator`.")] = None,
    offload_state: Annotated[bool, typer.Option(
        "--offload-state",
        help="hf: (SAM) members: keep their tracking state and frames in CPU memory, read onto the device when "
             "needed (transformers' session offloading): less GPU memory on long videos with many objects, slower.")] = False,
    threads: Annotated[int | None, typer.Option(
        "--threads", metavar="N", help=THREADS_HELP)] = None,
    inference: dict[str, object],
) -> None:
    """Segment every sequence of a split (--data), or one video (--video, --first-mask), from first-frame masks (STM memory propagation).

    A sequence appears only once complete, with a provenance.json (checkpoint hashes, options, version, fingerprints of the frames and annotations read; docs/reuse.md); on re-run a finished sequence made the same way is skipped, one made otherwise refuses the run (--overwrite redoes it). Under torchrun, srun or a SLURM job array, sequences are shared across the tasks (longest first; see docs/cluster.md).
    """
    with handle_errors():
        from vosbench.errors import ConfigError
        from vosbench.infer import (
            InferOptions,
            MemberSpec,
            Recipe,
            infer_dataset,
            infer_video,
            parse_ensemble,
        )
        from vosbench.infer.recipe import member_path

        if (checkpoint is None) == (ensemble is None):
            raise ConfigError("give exactly one of --checkpoint PATH or --ensemble LIST_OR_RECIPE")
        if (data is None) == (video is None):
            raise ConfigError("give exactly one of --data ROOT (a dataset) or --video FILE_OR_FOLDER (one video)")
        if video is not None and first_mask is None:
            raise ConfigError("--video needs --first-mask PNG (the object ids of the first frame)")
        if video is None and (first_mask is not None or mask_frame or overlay):
            raise ConfigError("--first-mask, --mask-frame and --overlay go with --video")
        if video is not None and given is not None:
            raise ConfigError("--given goes with --data: with --video the given mask is --first-mask (--mask-frame N)")
        set_threads(threads)
        if checkpoint is not None:  # one path, taken as is (no ',' / ':WEIGHT' / .toml parsing)
            recipe = Recipe(members=[MemberSpec(member_path(str(checkpoint)))], name=checkpoint.stem)
        else:
            recipe = parse_ensemble(ensemble)  # type: ignore[arg-type]
        if any(m.hf_reference is not None for m in recipe.members):
            from vosbench_cli.prepare_depth import _quiet_transformers

            _quiet_transformers()
        rank, world, device = _distributed(device)
        options = InferOptions.resolve(recipe, **inference, device=device, overwrite=overwrite,
                                       save_probs=save_probs, depth_estimator=depth_estimator, given=given,
                                       offload_state=offload_state)
        if video is not None:  # one video's folder is built whole beside --out and renamed onto it: no lock
            with progress_bar() as progress:
                result = infer_video(recipe, video, first_mask, out, mask_frame=mask_frame, options=options,
                                     overlay=overlay, progress=progress)
            _print_video(result)
            return
        from vosbench.outlock import out_lock

        lock = out_lock(out, "infer") if rank == 0 else contextlib.nullcontext()  # rank 0 holds it for all ranks
        with lock, progress_bar() as progress:
            summary = infer_dataset(recipe, data, split, resolution, out, options, progress, rank=rank, world_size=world,
                                    announce=lambda line: console.print(line, highlight=False, soft_wrap=True))

    title = f"infer {split} -> {summary.out}" + (f" (rank {summary.rank}/{summary.world_size})" if world > 1 else "")
    table = Table(title=title)
    for col in ("sequence", "frames", "objects", "status", "frames/s"):
        table.add_column(col, justify="left" if col in ("sequence", "status") else "right")
    for s in summary.sequences:
        table.add_row(s.name, str(s.frames), str(s.objects) if s.status == "written" else "", s.status,
                      f"{s.fps:.2f}" if s.status == "written" else "")
    console.print(table)
    memory = f"peak RSS {summary.peak_rss_mb:.0f} MiB"
    if summary.peak_cuda_mb is not None:
        memory += f", peak CUDA {summary.peak_cuda_mb:.0f} MiB"
    console.print(
        f"models: {', '.join(summary.members)} on {summary.device}, {summary.precision}\n"
        f"{len(summary.written)} written ({summary.frames} frames, {summary.fps:.2f} frames/s), "
        f"{len(summary.sequences) - len(summary.written)} skipped; {memory}"
    )


def _print_video(result) -> None:
    run = result.run
    h, w = result.size
    rate = f", {result.fps:.3g} frames/s" if result.fps else ""
    status = run.sequences[0].status if run.sequences else "written"
    speed = f" at {run.fps:.2f} frames/s" if run.written else ""
    console.print(
        f"{run.split}: {result.frames} frames, {w}x{h}{rate} -> {run.out}/<frame>.png ({status}{speed})\n"
        f"models: {', '.join(run.members)} on {run.device}, {run.precision}; peak RSS {run.peak_rss_mb:.0f} MiB"
        + (f"\noverlay: {result.overlay}" if result.overlay else "")
    )


def with_inference_flags(func: Callable[..., None]) -> Callable[..., None]:
    """``func`` with one flag per inference option (vosbench.infer.options), gathered into its
    ``inference`` argument (only the flags given: the others leave the recipe's values)."""
    from vosbench.infer.options import inference_fields

    sig = inspect.signature(func, eval_str=True)
    fields = inference_fields()
    flags = []
    for f in fields:
        name = "--" + f.name.replace("_", "-")
        kind = type(f.default)
        if kind is bool:
            info, hint = typer.Option(f"{name}/--no-{name[2:]}", help=f.metadata["help"]), bool
        elif kind is tuple:  # comma-separated numbers (scales)
            info, hint = typer.Option(name, help=f.metadata["help"]), str
        else:
            info, hint = typer.Option(name, help=f.metadata["help"]), kind
        flags.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                       annotation=Annotated[hint | None, info]))

    @functools.wraps(func)
    def wrapper(**kwargs: object) -> None:
        from vosbench.infer import parse_scales

        chosen = {f.name: kwargs.pop(f.name) for f in fields}
        chosen = {k: v for k, v in chosen.items() if v is not None}
        if isinstance(chosen.get("scales"), str):
            with handle_errors():
                chosen["scales"] = parse_scales(chosen["scales"])
        return func(**kwargs, inference=chosen)

    params = [p for p in sig.parameters.values() if p.name != "inference"]
    wrapper.__signature__ = sig.replace(parameters=params + flags)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params + flags}
    return wrapper


def register(app: typer.Typer) -> None:
    command = with_inference_flags(infer_cmd)
    app.command("infer", help=inspect.cleandoc(infer_cmd.__doc__ or "") + "\n\n" + EXAMPLE)(command)

