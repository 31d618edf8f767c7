"""Where this process sits in a multi-process job: torchrun, SLURM tasks, SLURM arrays.

:func:`world_from_env` is the one reading of torchrun's and SLURM's variables, for training
(``vosbench.train.distributed``), logging (``vosbench_cli.common``) and inference sharding.

Pure functions of the environment (read by the caller, passed in): no import-time globals.

- torchrun sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; they win when present.
- ``srun`` (a job step: ``SLURM_STEP_ID``) sets ``SLURM_PROCID`` (rank), ``SLURM_NTASKS`` (world size) and ``SLURM_LOCALID`` (the
  task's index on its node, which picks its GPU).
- A job array (``sbatch --array=0-3``) runs independent jobs with ``SLURM_ARRAY_TASK_ID``,
  ``SLURM_ARRAY_TASK_MIN``, ``SLURM_ARRAY_TASK_STEP`` and ``SLURM_ARRAY_TASK_COUNT``; each array
  job is one share of the work (times its own ``srun`` tasks, if it has several).

Sequences are dealt longest-first (greedy by frame count: each goes to the rank with the fewest
frames so far), so ranks finish at about the same time; ``rank::world`` dealing can give one
rank all the long videos.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from vosbench.errors import ConfigError


def _int(env: Mapping[str, str], name: str) -> int | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        return None
    return env_int(env, name)


def env_int(env: Mapping[str, str], name: str) -> int:
    """The integer value of ``env[name]``; a one-line ConfigError when it is not one."""
    value = env[name]
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r} is not an integer") from None


def world_from_env(env: Mapping[str, str], *, arrays: bool = False) -> tuple[int, int, int]:
    """(rank, world size, local rank) of this process; (0, 1, 0) outside torchrun and SLURM.

    torchrun's ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` first. Without them, inside a SLURM job
    step (``srun``, which sets ``SLURM_STEP_ID``) ``SLURM_PROCID`` / ``SLURM_NTASKS`` /
    ``SLURM_LOCALID``; a batch script's own shell (no step) also carries ``SLURM_NTASKS`` but is one
    process (so is the batch pseudo-step). With ``arrays`` (independent shares of work, e.g. inference; never a process group)
    each job of a SLURM array is one share, times its own step's tasks.
    """
    world = _int(env, "WORLD_SIZE")
    if world is not None:  # torchrun (also when it runs inside a SLURM job)
        rank, local = _int(env, "RANK") or 0, _int(env, "LOCAL_RANK") or 0
        source = "torchrun's RANK/WORLD_SIZE"
    else:
        step_id = _int(env, "SLURM_STEP_ID")
        step_id = _int(env, "SLURM_STEPID") if step_id is None else step_id
        # an srun task; not the batch (0xfffffffe) or extern (0xfffffffd) pseudo-steps
        in_step = step_id is not None and step_id < 0xFFFFFFFD
        ntasks = (_int(env, "SLURM_NTASKS") or _int(env, "SLURM_NPROCS")) if in_step else None  # NPROCS: older name
        procid = (_int(env, "SLURM_PROCID") or 0) if in_step else 0
        local = (_int(env, "SLURM_LOCALID") or 0) if in_step else 0
        ntasks = ntasks or 1
        task_id, count = _int(env, "SLURM_ARRAY_TASK_ID"), _int(env, "SLURM_ARRAY_TASK_COUNT")
        if arrays and task_id is not None and count is not None:
            first = _int(env, "SLURM_ARRAY_TASK_MIN") or 0
            step = _int(env, "SLURM_ARRAY_TASK_STEP") or 1
            if step < 1 or (task_id - first) % step:
                raise ConfigError(
                    f"SLURM_ARRAY_TASK_ID={task_id} is not on the array's grid (min {first}, step {step})")
            index = (task_id - first) // step
            rank, world = index * ntasks + procid, count * ntasks
            source = "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT" + (" and SLURM_PROCID/SLURM_NTASKS" if ntasks > 1 else "")
        else:
            rank, world = procid, ntasks
            source = "SLURM_PROCID/SLURM_NTASKS"
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"rank {rank} out of range for world size {world} (from {source})")
    if local < 0:
        raise ConfigError(f"local rank {local} is negative")
    return rank, world, local


def rank_device(device: str, local_rank: int, world: int, visible_gpus: int) -> str:
    """The device of one process of a ``world``-process job: CUDA processes take their local GPU.

    ``auto``/``cuda`` (already resolved to ``cuda``) become ``cuda:<local rank>``; with one visible
    GPU (SLURM's ``--gpus-per-task=1`` gives each task its own) every process uses ``cuda:0``. An
    explicit ``cuda:N`` is kept only where it is this process's GPU: the same ``cuda:N`` on every
    rank would put them all on one GPU, so it is refused in one line.
    """
    if world <= 1 or not device.startswith("cuda"):
        return device
    _, _, index = device.partition(":")
    if visible_gpus <= 1:
        if index not in ("", "0"):
            raise ConfigError(f"--device {device}: this process sees {visible_gpus} GPU(s)")
        return "cuda:0"
    if local_rank >= visible_gpus:
        raise ConfigError(
            f"local rank {local_rank} has no GPU of its own: this node shows {visible_gpus} GPUs to "
            f"{local_rank + 1}+ processes; start at most {visible_gpus} tasks per node (e.g. srun "
            f"--ntasks-per-node={visible_gpus}) or give each task one GPU (--gpus-per-task=1)")
    if index and int(index) != local_rank:
        raise ConfigError(
            f"--device {device} under {world} processes: local rank {local_rank} would not use its own GPU "
            f"(every rank would share GPU {index}); pass --device cuda (or auto) and each process takes "
            f"GPU <local rank>")
    return f"cuda:{local_rank}"


def deal_longest_first(lengths: Sequence[tuple[str, int]], world: int) -> list[list[str]]:
    """Deal named items of the given lengths to ``world`` ranks, longest first, each to the rank
    with the least total so far (ties: the lower rank; equal lengths: by name). Deterministic:
    every rank computes the same deal from the same list."""
    if world < 1:
        raise ValueError(f"world size must be >= 1, got {world}")
    shares: list[list[str]] = [[] for _ in range(world)]
    totals = [0] * world
    for name, length in sorted(lengths, key=lambda item: (-item[1], item[0])):
        r = min(range(world), key=lambda k: (totals[k], k))
        shares[r].append(name)
        totals[r] += length
    return shares
