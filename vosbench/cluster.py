"""Where this process sits in a cluster job, from the launcher's environment (no torch import).

:func:`world_from_env` is the one reading of torchrun's and SLURM's variables, for training
(``vosbench.train.distributed``), logging (``vosbench_cli.common``) and inference sharding.
"""

from __future__ import annotations

from collections.abc import Mapping

from vosbench.errors import ConfigError


def env_int(env: Mapping[str, str], name: str) -> int:
    value = env[name]
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r} is not an integer") from None


def world_from_env(env: Mapping[str, str]) -> tuple[int, int, int]:
    """This process's ``(rank, world size, local rank)`` from a launcher's environment.

    torchrun's ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` first; without them, inside a SLURM job
    step (``srun``, which sets ``SLURM_STEP_ID``), ``SLURM_PROCID`` / ``SLURM_NTASKS`` /
    ``SLURM_LOCALID``; else ``(0, 1, 0)``. A batch script's own shell (no step) also carries
    ``SLURM_NTASKS`` but is one process, so it counts as not distributed.
    """
    if "WORLD_SIZE" in env:
        world = env_int(env, "WORLD_SIZE")
        rank = env_int(env, "RANK") if "RANK" in env else 0
        local = env_int(env, "LOCAL_RANK") if "LOCAL_RANK" in env else 0
    elif "SLURM_PROCID" in env and "SLURM_NTASKS" in env and ("SLURM_STEP_ID" in env or "SLURM_STEPID" in env):
        world = env_int(env, "SLURM_NTASKS")
        rank = env_int(env, "SLURM_PROCID")
        local = env_int(env, "SLURM_LOCALID") if "SLURM_LOCALID" in env else 0
    else:
        return 0, 1, 0
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ConfigError(f"inconsistent launcher environment: rank {rank}, world size {world}, local rank {local}")
    return rank, world, local
