"""DDP helpers on torch.distributed: the process group comes from torchrun's (or SLURM's) environment.

The environment is read inside :func:`init_distributed`, never at import.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from vosbench.cluster import world_from_env
from vosbench.errors import ConfigError, VosbenchError

T = TypeVar("T")


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialised_here: bool = False
    gpu: int = 0  # this process's CUDA device index (its local rank, or 0 where SLURM bound it one GPU)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def check_local_gpu(local_rank: int, env: Mapping[str, str] | None = None) -> int:
    """This process's GPU index: its local rank; 0 for a SLURM task bound to one GPU (``srun
    --gpus-per-task=1`` / ``--gpu-bind``: each task sees only its own); one line instead of CUDA's
    "invalid device ordinal" when the local rank has no GPU."""
    env = os.environ if env is None else env
    visible = torch.cuda.device_count()
    if local_rank < visible:
        return local_rank
    if visible == 1 and "WORLD_SIZE" not in env and ("SLURM_STEP_ID" in env or "SLURM_STEPID" in env):
        return 0
    raise ConfigError(
        f"local rank {local_rank} has no GPU: {visible} visible on {socket.gethostname()} "
        f"(CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES', 'unset')}); start at most {visible} "
        "processes per node (--nproc, srun --ntasks-per-node) or one per GPU")


def init_distributed(device_type: str, env: Mapping[str, str] | None = None) -> DistContext:
    """Join the process group the launcher describes (world size > 1): NCCL on CUDA, gloo on CPU.

    torchrun's variables, else a SLURM step's (:func:`vosbench.cluster.world_from_env`); under SLURM alone the
    rendezvous is ``MASTER_ADDR`` (required) and ``MASTER_PORT`` (default 29500).
    """
    env = os.environ if env is None else env
    rank, world, local_rank = world_from_env(env)
    if world <= 1:
        return DistContext()
    gpu = check_local_gpu(local_rank, env) if device_type == "cuda" else 0
    if dist.is_initialized():
        return DistContext(rank, world, local_rank, initialised_here=False, gpu=gpu)
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(gpu)
    if "WORLD_SIZE" in env:  # torchrun: env:// reads MASTER_ADDR / MASTER_PORT it set
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    else:
        if "MASTER_ADDR" not in env:
            raise ConfigError("SLURM task without torchrun: set MASTER_ADDR to the first node of the job, e.g. "
                              "export MASTER_ADDR=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1)")
        port = env.get("MASTER_PORT", "29500")
        if not port.isdigit():
            raise ConfigError(f"environment variable MASTER_PORT={port!r} is not a port number")
        dist.init_process_group(backend=backend, rank=rank, world_size=world,
                                init_method=f"tcp://{env['MASTER_ADDR']}:{port}")
    return DistContext(rank, world, local_rank, initialised_here=True, gpu=gpu)


def shutdown(ctx: DistContext) -> None:
    if ctx.initialised_here and dist.is_initialized():
        dist.destroy_process_group()


def mean_across(ctx: DistContext, value: torch.Tensor) -> torch.Tensor:
    """Mean of a tensor (e.g. a step's loss and its parts) over all ranks (the value itself when not distributed)."""
    if not ctx.distributed:
        return value
    v = value.detach().clone().float()
    dist.all_reduce(v, op=dist.ReduceOp.SUM)
    return v / ctx.world_size


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def broadcast_from_main(ctx: DistContext, value: T) -> T:
    """Rank 0's ``value`` on every rank (picklable; the value itself when not distributed)."""
    if not ctx.distributed:
        return value
    box = [value if ctx.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]  # type: ignore[return-value]


def agreed(ctx: DistContext, fn: Callable[[], T]) -> T:
    """Run ``fn`` on every rank; if it raises a :class:`VosbenchError` on any rank, raise on all.

    A check that fails on one rank only (a node that cannot see the data, a different folder) would
    otherwise leave the others waiting in the next collective until the timeout. Rank 0 raises its
    own error, or the first failing rank's message prefixed with that rank.
    """
    error: VosbenchError | None = None
    value: Any = None
    try:
        value = fn()
    except VosbenchError as exc:
        error = exc
    if not ctx.distributed:
        if error is not None:
            raise error
        return value
    messages: list[str | None] = [None] * ctx.world_size
    dist.all_gather_object(messages, None if error is None else str(error))
    if error is not None:
        raise error
    for rank, message in enumerate(messages):
        if message is not None:
            raise VosbenchError(f"rank {rank}: {message}")
    return value


SHARED_TOKEN = ".vosbench-shared-check"


def check_shared_folder(ctx: DistContext, folder: Path, what: str = "--out", wait_s: float | None = None) -> None:
    """Every rank must see the same ``folder`` (shared storage): rank 0 writes a token file there,
    the others read it back. A rank that cannot stops every rank with one line naming it and its host.

    A network filesystem may show a new file on another node only after its attribute cache
    expires (NFS: up to ``acdirmax``, 60 s by default), so a rank looks again for ``wait_s`` seconds
    (default: the ``VOSBENCH_SHARED_WAIT`` environment variable, else 60) before it gives up.
    Rank 0 creates ``folder`` for the check and removes it again (if it was new) on failure.
    """
    if not ctx.distributed:
        return
    token_path = Path(folder) / SHARED_TOKEN
    created = not Path(folder).exists()

    def write_token() -> str:
        if not ctx.is_main:
            return ""
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
            token = f"{secrets.token_hex(16)} {socket.gethostname()} {os.getpid()}"
            token_path.write_text(token)
        except OSError as exc:  # read-only, no permission, full: every rank stops, not only rank 0
            raise ConfigError(f"{folder}: cannot write into {what}: {exc.strerror or exc}") from None
        return token

    token = broadcast_from_main(ctx, agreed(ctx, write_token))

    if wait_s is None:
        wait_s = float(os.environ.get("VOSBENCH_SHARED_WAIT", "60"))

    def read_token() -> str:
        try:
            return token_path.read_text()
        except OSError:
            return ""

    def look() -> None:
        if ctx.is_main:
            return
        deadline = time.monotonic() + wait_s
        seen = read_token()
        while seen != token and time.monotonic() < deadline:
            time.sleep(1.0)
            seen = read_token()
        if seen != token:
            raise ConfigError(f"{folder}: {what} is not the folder rank 0 writes (host {socket.gethostname()} does "
                              f"not see rank 0's {SHARED_TOKEN}); {what} must be on storage every node shares")

    try:
        agreed(ctx, look)
    except VosbenchError:
        if ctx.is_main:
            token_path.unlink(missing_ok=True)
            if created:
                with contextlib.suppress(OSError):
                    Path(folder).rmdir()  # only if still empty
        raise
    barrier(ctx)  # every rank has read the token before it goes
    if ctx.is_main:
        token_path.unlink(missing_ok=True)


def launch_command(nproc: int, args: list[str], *, nnodes: int = 1, node_rank: int | None = None,
                   rdzv_endpoint: str | None = None, rdzv_id: str = "vosbench-train") -> list[str]:
    """The torchrun command that runs ``vosbench_cli.launch`` with ``args`` on ``nproc`` local workers.

    One node: ``--standalone``. Several (``nnodes`` > 1, one command per node, the same on all but
    ``node_rank``): ``rdzv_endpoint`` HOST:PORT is required; with ``node_rank`` the static
    rendezvous (node 0 holds rank 0 and serves HOST:PORT), without it torchrun's c10d rendezvous
    (any node may serve it; ranks follow arrival order).
    """
    if nproc < 1:
        raise ConfigError(f"--nproc must be >= 1, got {nproc}")
    if nnodes < 1:
        raise ConfigError(f"--nnodes must be >= 1, got {nnodes}")
    head = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
    if nnodes == 1 and rdzv_endpoint is None:
        if node_rank not in (None, 0):
            raise ConfigError(f"--node-rank {node_rank} needs --nnodes > {node_rank}")
        return [*head, "--standalone", "-m", "vosbench_cli.launch", *args]
    if rdzv_endpoint is None:
        raise ConfigError(f"--nnodes {nnodes} needs --rdzv-endpoint HOST:PORT (a node of the job every node reaches)")
    host, sep, port = rdzv_endpoint.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"--rdzv-endpoint must be HOST:PORT, got {rdzv_endpoint!r}")
    head.append(f"--nnodes={nnodes}")
    if node_rank is not None:
        if not 0 <= node_rank < nnodes:
            raise ConfigError(f"--node-rank must be in 0..{nnodes - 1}, got {node_rank}")
        head += [f"--node-rank={node_rank}", f"--master-addr={host}", f"--master-port={port}"]
    else:
        head += ["--rdzv-backend=c10d", f"--rdzv-endpoint={rdzv_endpoint}", f"--rdzv-id={rdzv_id}"]
    return [*head, "-m", "vosbench_cli.launch", *args]


def trainable_batchnorms(model: torch.nn.Module) -> list[str]:
    """Names of the BatchNorm layers of ``model`` whose statistics train (not frozen by
    :func:`vosbench.models.backbone.freeze_bn_statistics`)."""
    from vosbench.models.backbone import bn_statistics_frozen

    return [name for name, m in model.named_modules()
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and not bn_statistics_frozen(m)
            and not isinstance(m, torch.nn.SyncBatchNorm)]


def sync_batchnorm(model: torch.nn.Module) -> int:
    """Replace each trainable BatchNorm of ``model`` by its synchronised form, in place (timm's
    converter: a BatchNorm + activation layer keeps its activation); frozen ones stay. The
    parameters are the same objects (an optimizer built before keeps working). Returns the count."""
    from timm.layers import convert_sync_batchnorm

    from vosbench.models.backbone import bn_statistics_frozen

    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if (isinstance(child, torch.nn.modules.batchnorm._BatchNorm) and not bn_statistics_frozen(child)
                    and not isinstance(child, torch.nn.SyncBatchNorm)):
                setattr(parent, name, convert_sync_batchnorm(child))
                count += 1
    return count
