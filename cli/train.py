"""`vosbench train`: two-stage STM / SCM / D-STM training from a TOML config (DDP via torchrun)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from vosbench_cli.common import console, fail, handle_errors, progress_bar
from vosbench.errors import VosbenchError
from vosbench.precision import DEVICE_HELP, PRECISION_HELP

if TYPE_CHECKING:
    from vosbench.train.loop import TrainResult


def _summary(result: TrainResult) -> Table:
    t = Table(title=f"training run in {result.out_dir}")
    for col in ("steps", "final loss", "minutes", "device", "precision", "checkpoint"):
        t.add_column(col)
    t.add_row(f"{result.step}/{result.total_steps}", f"{result.final_loss:.4f}", f"{result.seconds / 60:.1f}",
              result.device, result.precision, str(result.last_checkpoint))
    return t


def train(
    config: Annotated[Path, typer.Option("--config", help="Training config (TOML), e.g. configs/stm-tiny.toml.")],
    data: Annotated[Path | None, typer.Option("--data", help="Dataset root (sets data.root).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Run folder (default runs/<config name>).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last.pt.")] = False,
    max_steps: Annotated[int | None, typer.Option("--max-steps", min=1, help="Stop after this global step (schedules unchanged).")] = None,
    nproc: Annotated[int, typer.Option("--nproc", min=1, help="Local worker processes (DDP through torchrun).")] = 1,
    nnodes: Annotated[int, typer.Option("--nnodes", min=1, help="Nodes of a multi-node run: run this same command on each node (docs/cluster.md); --out and the data on storage all nodes share.")] = 1,
    node_rank: Annotated[int | None, typer.Option("--node-rank", min=0, help="This node's index 0..N-1 (torchrun's static rendezvous; node 0 serves --rdzv-endpoint). Leave out for the c10d rendezvous (any order).")] = None,
    rdzv_endpoint: Annotated[str | None, typer.Option("--rdzv-endpoint", help="HOST:PORT of the rendezvous for --nnodes > 1 (a node every node reaches, e.g. the job's first node).")] = None,
    device: Annotated[str, typer.Option("--device", help=DEVICE_HELP)] = "auto",
    precision: Annotated[str | None, typer.Option(
        "--precision", help=PRECISION_HELP + " Sets train.precision (default: the config's, auto).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a config key: --set optim.lr=1e-4 (repeatable); KEY=none removes a key (e.g. train.init_checkpoint=none).")] = None,
    allow_random_init: Annotated[bool, typer.Option("--allow-random-init", help="Let backbones start random (no model.backbone_weights, or weights that cannot be downloaded: a warning).")] = False,
    threads: Annotated[int | None, typer.Option("--threads", metavar="N", help="CPU threads for torch per process: sets train.threads (default: the config's).")] = None,
) -> None:
    """Train a model from a TOML config; writes OUT/last.pt, OUT/step-<N>.pt, OUT/log.csv and OUT/config.toml.

    Example: vosbench train --config configs/stm-tiny.toml --data data/synthetic-small --out runs/stm-tiny
    """
    # torch loads only when the verb runs, so `vosbench --help` and the other verbs start fast
    from vosbench.precision import resolve_numerics
    from vosbench.train.distributed import check_local_gpu, launch_command
    from vosbench.train.loop import preflight
    from vosbench.train.run import default_out_dir, resolve_run_config

    overrides = list(set_ or []) + ([f'train.precision="{precision}"'] if precision is not None else [])
    overrides += [f"train.threads={threads}"] if threads is not None else []  # the config's key, checked there
    if nproc > 1 or nnodes > 1 or rdzv_endpoint is not None:
        args = ["--config", str(config), "--device", device]
        for flag, value in (("--data", data), ("--out", out), ("--max-steps", max_steps)):
            if value is not None:
                args += [flag, str(value)]
        if resume:
            args.append("--resume")
        if allow_random_init:
            args.append("--allow-random-init")
        for item in overrides:
            args += ["--set", item]
        run_dir = out if out is not None else default_out_dir(config)
        with handle_errors():  # bad input: one error line here, before torchrun starts any worker
            cmd = launch_command(nproc, args, nnodes=nnodes, node_rank=node_rank, rdzv_endpoint=rdzv_endpoint,
                                 rdzv_id=_rdzv_id(run_dir))
            cfg = resolve_run_config(config, data=data, overrides=overrides)
            numerics = resolve_numerics(device, cfg.train.precision, "train")
            if numerics.device.type == "cuda":
                check_local_gpu(nproc - 1, {})  # --nproc beyond this node's GPUs: one line, not N tracebacks
            preflight(cfg, run_dir, resume=resume, world_size=nproc * nnodes, allow_random_init=allow_random_init)
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", "1")
        rc = subprocess.call(cmd, env=env)
        if rc != 0:
            raise fail(f"distributed training failed (torchrun exit code {rc}); see the workers' messages above")
        console.print(f"training finished: {run_dir}", highlight=False)
        return
    _run_worker(config, data, out, resume, max_steps, device, overrides, allow_random_init)


def _rdzv_id(run_dir: Path) -> str:
    """The same rendezvous id on every node of a job (the SLURM job id, else one from --out's name)."""
    job = os.environ.get("SLURM_JOB_ID")
    return f"vosbench-{job}" if job else f"vosbench-{Path(run_dir).name or 'train'}"


def _run_worker(config: Path, data: Path | None, out: Path | None, resume: bool, max_steps: int | None,
                device: str, overrides: list[str], allow_random_init: bool) -> None:
    from vosbench.outlock import out_lock
    from vosbench.train.run import default_out_dir, train_from_config

    is_main = os.environ.get("RANK", "0") == "0"
    if not is_main:  # other torchrun workers: rank 0 reports errors and progress
        try:
            train_from_config(config, data=data, out=out, resume=resume, max_steps=max_steps, device=device,
                              overrides=overrides, allow_random_init=allow_random_init)
        except VosbenchError:
            raise typer.Exit(code=1) from None
        return
    with handle_errors():
        _announce(config, data, device, overrides)
    with handle_errors(), out_lock(out if out is not None else default_out_dir(config), "train"), \
            progress_bar() as progress:
        result = train_from_config(config, data=data, out=out, resume=resume, max_steps=max_steps,
                                   device=device, overrides=overrides, progress=progress,
                                   allow_random_init=allow_random_init)
    console.print(_summary(result))


def _announce(config: Path, data: Path | None, device: str, overrides: list[str]) -> None:
    """Say up front what the run trains on: device, GPU name, precision and why (rank 0's GPU)."""
    from vosbench.precision import resolve_numerics
    from vosbench.train.run import resolve_run_config

    cfg = resolve_run_config(config, data=data, overrides=overrides)
    numerics = resolve_numerics(device, cfg.train.precision, "train")
    console.print(numerics.announce(), highlight=False, soft_wrap=True)


def _worker(
    config: Annotated[Path, typer.Option("--config")],
    data: Annotated[Path | None, typer.Option("--data")] = None,
    out: Annotated[Path | None, typer.Option("--out")] = None,
    resume: Annotated[bool, typer.Option("--resume")] = False,
    max_steps: Annotated[int | None, typer.Option("--max-steps")] = None,
    device: Annotated[str, typer.Option("--device")] = "auto",
    set_: Annotated[list[str] | None, typer.Option("--set")] = None,
    allow_random_init: Annotated[bool, typer.Option("--allow-random-init")] = False,
) -> None:
    """One torchrun worker of `vosbench train` (same options, without --nproc)."""
    _run_worker(config, data, out, resume, max_steps, device, list(set_ or []), allow_random_init)


worker_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
worker_app.command()(_worker)


def register(app: typer.Typer) -> None:
    app.command("train")(train)
