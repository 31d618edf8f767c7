"""`vosbench quickstart`: the README's main command, end to end on the embedded dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vosbench_cli.common import console, handle_errors, progress_bar, score, set_threads
from vosbench.precision import DEVICE_HELP, PRECISION_HELP


def quickstart(
    *,
    out: Annotated[Path, typer.Option("--out", help="Folder for the dataset, checkpoint, results and zip.")] = Path(
        "runs/quickstart"
    ),
    profile: Annotated[str, typer.Option("--profile", help="Embedded dataset profile (tiny, small, davis).")] = "small",
    seed: Annotated[int, typer.Option("--seed", help="Dataset seed.")] = 0,
    config: Annotated[
        Path | None, typer.Option("--config", help="Training config (default: the packaged quickstart config).")
    ] = None,
    pretrain_config: Annotated[Path | None, typer.Option(
        "--pretrain-config",
        help="Still-image stage the video stage starts from (default: the packaged one, unless --config is given).",
    )] = None,
    no_pretrain: Annotated[bool, typer.Option("--no-pretrain", help="Skip the still-image stage.")] = False,
    max_steps: Annotated[int | None, typer.Option("--max-steps", help="Cap the steps of each training stage.")] = None,
    device: Annotated[str, typer.Option("--device", help=DEVICE_HELP)] = "auto",
    precision: Annotated[str | None, typer.Option(
        "--precision", help=PRECISION_HELP + " For training and inference (default: auto).")] = None,
    threads: Annotated[int | None, typer.Option(
        "--threads", metavar="N", help="CPU threads for torch, training and inference (default: the packaged "
                                       "configs' train.threads = 1 for training, torch's choice for inference).")] = None,
) -> None:
    """Prepare the embedded dataset, train a tiny STM on CPU (still images, then clips), infer on val,
    evaluate, package a zip.

    Example: vosbench quickstart --out runs/quickstart
    """
    from vosbench.quickstart import run_quickstart
    from vosbench.visualize import default_out_dir

    with handle_errors():
        from vosbench.precision import resolve_numerics
        from vosbench.quickstart import default_config
        from vosbench.train.run import resolve_run_config

        trains = precision or resolve_run_config(config or default_config()).train.precision
        for numerics in (resolve_numerics(device, trains, "train"), resolve_numerics(device, precision or "auto")):
            console.print(numerics.announce(), highlight=False, soft_wrap=True)
    with handle_errors(), progress_bar() as progress:
        set_threads(threads)
        res = run_quickstart(out, profile=profile, seed=seed, config=config, pretrain_config=pretrain_config,
                             pretrain=not no_pretrain, max_steps=max_steps,
                             device=device, precision=precision, threads=threads, progress=progress)
    table = Table(title="DAVIS J&F on the embedded val split (%)", title_justify="left")
    table.add_column("method")
    for c in ("J&F", "J mean", "J rec.", "J decay", "F mean", "F rec.", "F decay"):
        table.add_column(c, justify="right")
    for name, ev in (("copy frame 0", res.baseline), (res.method, res.evaluation)):
        table.add_row(name, *(score(v) for v in ev.summary.values()))
    console.print(table)
    model, copy = res.evaluation.summary.jf_mean, res.baseline.summary.jf_mean
    console.print(
        f"J&F {score(model)} vs {score(copy)} for copying the first-frame mask onto every frame "
        f"({model / copy:.2f}x the copy baseline)" if copy > 0 else f"J&F {score(model)} (copy baseline 0)"
    )
    stages = f"{res.pretrain_steps} still-image steps + " if res.pretrain_steps else ""
    console.print(
        f"trained {stages}{res.train_steps} video steps of batch {res.train_batch} in {res.train_seconds:.0f} s on {res.device}, "
        f"precision {res.precision}; inference {res.infer_fps:.1f} frames/s, precision {res.infer_precision}\n"
        f"checkpoint  {res.checkpoint}\nresults     {res.results}\n"
        f"submission  {res.submission} ({res.submission_bytes / 1e6:.1f} MB, validated)"
    )
    if not res.worst_sequence:
        return
    video = default_out_dir(res.results) / res.worst_sequence / f"{res.worst_sequence}.mp4"
    console.print(
        f"next: the worst val sequence is {res.worst_sequence} (J&F {score(res.worst_jf)}); its overlay video "
        f"({video}) comes from\n  vosbench visualize --results {res.results} --data {res.data} --seq {res.worst_sequence}",
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    app.command("quickstart")(quickstart)
