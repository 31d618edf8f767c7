"""Where a process sits in a multi-process inference job (vosbench.cluster): torchrun, srun, job arrays,
its GPU, and the longest-first deal of sequences."""

from __future__ import annotations

import pytest

from vosbench.cluster import deal_longest_first, rank_device, world_from_env
from vosbench.errors import ConfigError


@pytest.mark.parametrize(("env", "expected"), [
    ({}, (0, 1, 0)),
    ({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}, (3, 4, 1)),
    ({"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1", "SLURM_STEP_ID": "0"}, (5, 8, 1)),
    # torchrun inside a SLURM allocation: torchrun's variables describe the workers
    ({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "SLURM_PROCID": "0", "SLURM_NTASKS": "1"}, (1, 2, 1)),
    # sbatch --array=0-3: one share per array job
    ({"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "0",
      "SLURM_PROCID": "0", "SLURM_NTASKS": "1"}, (2, 4, 0)),
    # --array=10-16:3 -> ids 10, 13, 16; id 13 is the second job
    ({"SLURM_ARRAY_TASK_ID": "13", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "10",
      "SLURM_ARRAY_TASK_STEP": "3"}, (1, 3, 0)),
    # an array of 3 jobs with 2 srun tasks each: job 1, task 1 is rank 3 of 6
    ({"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_PROCID": "1", "SLURM_NTASKS": "2",
      "SLURM_LOCALID": "1", "SLURM_STEP_ID": "0"}, (3, 6, 1)),
])
def test_world_from_env(env: dict[str, str], expected: tuple[int, int, int]) -> None:
    assert world_from_env(env, arrays=True) == expected


@pytest.mark.parametrize(("env", "message"), [
    ({"SLURM_PROCID": "x", "SLURM_NTASKS": "2", "SLURM_STEP_ID": "0"}, "SLURM_PROCID='x' is not an integer"),
    ({"SLURM_PROCID": "2", "SLURM_NTASKS": "2", "SLURM_STEP_ID": "0"}, "rank 2 out of range for world size 2"),
    ({"RANK": "0", "WORLD_SIZE": "0"}, "out of range for world size 0"),
    ({"SLURM_ARRAY_TASK_ID": "11", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "10",
      "SLURM_ARRAY_TASK_STEP": "3"}, "not on the array's grid"),
])
def test_bad_environment_is_one_config_error(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        world_from_env(env, arrays=True)


def test_arrays_count_only_where_asked() -> None:
    """An array job is a share of independent work (inference), never a member of a process group (training)."""
    env = {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4"}
    assert world_from_env(env) == (0, 1, 0)
    assert world_from_env(env, arrays=True) == (2, 4, 0)


def test_longest_first_balances_where_rank_stride_does_not() -> None:
    lengths = [("a", 100), ("b", 1), ("c", 100), ("d", 1)]
    # rank::world would give rank 0 a and c (200 frames) and rank 1 b and d (2 frames)
    assert deal_longest_first(lengths, 2) == [["a", "b"], ["c", "d"]]
    lengths = [("a", 10), ("b", 9), ("c", 2), ("d", 2), ("e", 1)]
    # by hand: a->0 (10), b->1 (9), c->1 (11), d->0 (12), e->1 (12)
    assert deal_longest_first(lengths, 2) == [["a", "d"], ["b", "c", "e"]]
    shares = deal_longest_first(lengths, 7)
    assert sorted(n for s in shares for n in s) == ["a", "b", "c", "d", "e"] and shares[5:] == [[], []]


def test_ranks_take_their_local_gpu_and_refuse_a_shared_ordinal() -> None:
    assert rank_device("cuda", 1, 2, visible_gpus=2) == "cuda:1"
    assert rank_device("cuda:1", 1, 2, visible_gpus=2) == "cuda:1"
    assert rank_device("cuda", 1, 2, visible_gpus=1) == "cuda:0"  # --gpus-per-task=1: each sees its own
    assert rank_device("cpu", 1, 2, visible_gpus=0) == "cpu"
    assert rank_device("cuda:3", 0, 1, visible_gpus=4) == "cuda:3"  # one process: as asked
    with pytest.raises(ConfigError, match=r"--device cuda:0 under 2 processes: local rank 1 .*--device cuda"):
        rank_device("cuda:0", 1, 2, visible_gpus=2)
    with pytest.raises(ConfigError, match="local rank 4 has no GPU of its own: this node shows 4 GPUs"):
        rank_device("cuda", 4, 8, visible_gpus=4)
