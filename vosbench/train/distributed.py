"""DDP helpers on torch.distributed: the process group comes from torchrun's environment.

The environment is read inside :func:`init_distributed`, never at import.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

from vosbench.errors import ConfigError


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialised_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device_type: str) -> DistContext:
    """Join the process group torchrun describes (WORLD_SIZE > 1): NCCL on CUDA, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_initialized():
        return DistContext(rank, world, local_rank, initialised_here=False)
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistContext(rank, world, local_rank, initialised_here=True)


def shutdown(ctx: DistContext) -> None:
    if ctx.initialised_here and dist.is_initialized():
        dist.destroy_process_group()


def mean_across(ctx: DistContext, value: torch.Tensor) -> torch.Tensor:
    """Mean of a scalar tensor over all ranks (the value itself when not distributed)."""
    if not ctx.distributed:
        return value
    v = value.detach().clone().float()
    dist.all_reduce(v, op=dist.ReduceOp.SUM)
    return v / ctx.world_size


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def launch_command(nproc: int, args: list[str]) -> list[str]:
    """The torchrun command that runs ``vosbench_cli.launch`` with ``args`` on ``nproc`` local workers."""
    if nproc < 1:
        raise ConfigError(f"--nproc must be >= 1, got {nproc}")
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
        "-m", "vosbench_cli.launch", *args,
    ]
