"""Cluster plumbing without a cluster: the launcher environment, torchrun commands, the GPU check,
the batch split with gradient accumulation, the training DataLoader, SyncBatchNorm, checkpoint links."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from vosbench.cluster import world_from_env
from vosbench.errors import CheckpointError, ConfigError
from vosbench.models import build_model, get_preset, load_checkpoint
from vosbench.train import batches
from vosbench.train.config import TrainConfig
from vosbench.train.distributed import init_distributed, launch_command, sync_batchnorm, trainable_batchnorms
from vosbench.train.loop import train
from vosbench.train.trainlog import read_log

# ------------------------------------------------------------------ launcher environment


@pytest.mark.parametrize("env,expected", [
    ({}, (0, 1, 0)),
    ({"WORLD_SIZE": "8", "RANK": "5", "LOCAL_RANK": "1"}, (5, 8, 1)),
    # srun step: SLURM's variables
    ({"SLURM_PROCID": "3", "SLURM_NTASKS": "4", "SLURM_LOCALID": "1", "SLURM_STEP_ID": "0"}, (3, 4, 1)),
    # torchrun inside an srun step: torchrun's variables win
    ({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "SLURM_PROCID": "0", "SLURM_NTASKS": "1",
      "SLURM_STEP_ID": "0"}, (1, 2, 1)),
    # the batch script's own shell (no step, or the batch pseudo-step): one process, whatever --ntasks says
    ({"SLURM_PROCID": "0", "SLURM_NTASKS": "4", "SLURM_LOCALID": "0"}, (0, 1, 0)),
    ({"SLURM_PROCID": "0", "SLURM_NTASKS": "4", "SLURM_STEP_ID": "4294967294"}, (0, 1, 0)),
    # a job array's tasks are separate jobs, never one process group (inference shares them instead)
    ({"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_PROCID": "0", "SLURM_NTASKS": "1"}, (0, 1, 0)),
    ({"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_PROCID": "1", "SLURM_NTASKS": "2",
      "SLURM_STEP_ID": "0"}, (1, 2, 0)),
])
def test_world_from_env(env: dict[str, str], expected: tuple[int, int, int]) -> None:
    assert world_from_env(env) == expected


@pytest.mark.parametrize("env", [{"WORLD_SIZE": "two"}, {"WORLD_SIZE": "2", "RANK": "2"},
                                 {"SLURM_PROCID": "4", "SLURM_NTASKS": "4", "SLURM_STEP_ID": "1"}])
def test_world_from_env_rejects_nonsense(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        world_from_env(env)


def test_local_rank_beyond_visible_gpus_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    set_device_calls: list[int] = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda i: set_device_calls.append(i))
    env = {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}
    with pytest.raises(ConfigError, match=r"local rank 1 has no GPU: 1 visible .*--nproc") as exc:
        init_distributed("cuda", env)
    assert "\n" not in str(exc.value) and not set_device_calls


def test_slurm_task_bound_to_one_gpu_uses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from vosbench.train.distributed import check_local_gpu

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    slurm = {"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "5", "SLURM_STEP_ID": "0"}
    assert check_local_gpu(5, slurm) == 0  # srun --gpus-per-task=1: the task sees its own GPU as cuda:0
    with pytest.raises(ConfigError, match="local rank 5 has no GPU"):
        check_local_gpu(5, {"WORLD_SIZE": "8", "LOCAL_RANK": "5"})  # torchrun: 8 workers, 1 GPU
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    assert check_local_gpu(5, slurm) == 5


def test_slurm_task_without_master_addr_is_one_line() -> None:
    env = {"SLURM_PROCID": "1", "SLURM_NTASKS": "2", "SLURM_LOCALID": "0", "SLURM_STEP_ID": "0"}
    with pytest.raises(ConfigError, match="MASTER_ADDR"):
        init_distributed("cpu", env)


def _torchrun_flags(cmd: list[str]) -> list[str]:
    return cmd[cmd.index("torch.distributed.run") + 1:cmd.index("vosbench_cli.launch") - 1]


def test_launch_command_forms() -> None:
    assert _torchrun_flags(launch_command(4, ["--config", "c.toml"])) == ["--nproc-per-node=4", "--standalone"]
    c10d = launch_command(8, ["--config", "c.toml"], nnodes=2, rdzv_endpoint="node01:29400", rdzv_id="job7")
    assert _torchrun_flags(c10d) == ["--nproc-per-node=8", "--nnodes=2", "--rdzv-backend=c10d",
                                     "--rdzv-endpoint=node01:29400", "--rdzv-id=job7"]
    assert c10d[-2:] == ["--config", "c.toml"]
    static = launch_command(8, [], nnodes=2, node_rank=1, rdzv_endpoint="node01:29500")
    assert _torchrun_flags(static) == ["--nproc-per-node=8", "--nnodes=2", "--node-rank=1",
                                       "--master-addr=node01", "--master-port=29500"]


@pytest.mark.parametrize("kwargs,needle", [
    ({"nnodes": 2}, "needs --rdzv-endpoint"),
    ({"nnodes": 2, "rdzv_endpoint": "node01"}, "HOST:PORT"),
    ({"nnodes": 2, "node_rank": 2, "rdzv_endpoint": "n:1"}, "--node-rank must be in 0..1"),
    ({"node_rank": 1}, "needs --nnodes"),
])
def test_launch_command_bad_options(kwargs: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        launch_command(1, [], **kwargs)


# ------------------------------------------------------------------ batch split


@pytest.mark.parametrize("world,per_rank", [(1, 3), (2, 2), (4, 1)])
def test_split_without_accumulation_is_what_distributed_sampler_gave(world: int, per_rank: int) -> None:
    n, seed, epoch = 24, 5, 3
    batch = world * per_rank
    for rank in range(world):
        sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True)
        sampler.set_epoch(epoch)
        old = [list(b) for b in DataLoader(list(sampler), batch_size=per_rank, drop_last=True)]
        perm = batches.epoch_permutation(n, seed, epoch)
        new = [batches.rank_micro_batches(perm[s * batch:(s + 1) * batch], world, 1, rank)[0] for s in range(n // batch)]
        assert [[int(i) for i in b] for b in old] == new


def test_batch_12_on_8_ranks_is_split_unevenly_with_weights_summing_to_one() -> None:
    window = list(range(100, 112))
    per_rank = [batches.rank_micro_batches(window, 8, 1, r)[0] for r in range(8)]
    assert [len(b) for b in per_rank] == [2, 2, 2, 2, 1, 1, 1, 1]
    assert sorted(i for b in per_rank for i in b) == window
    # DDP averages over the 8 ranks: the weighted sum is the batch mean
    assert sum(batches.micro_weight(len(b), 12, 8) for b in per_rank) / 8 == pytest.approx(1.0)
    acc = [batches.rank_micro_batches(window, 4, 3, r) for r in range(4)]
    assert all(len(m) == 1 for ms in acc for m in ms) and sorted(i for ms in acc for m in ms for i in m) == window


def test_too_small_batch_is_refused() -> None:
    with pytest.raises(ConfigError, match="smaller than 4 workers x train.accumulate 2"):
        batches.check_split(7, 4, 2)


def test_accumulating_two_halves_trains_like_the_whole_batch(tiny_config: Callable[..., TrainConfig],
                                                             tmp_path: Path) -> None:
    """1 process x accumulate 2 x 1 clip = batch 2 in one pass: same losses, same weights."""
    whole = train(tiny_config("train.batch_size=2"), tmp_path / "whole", max_steps=2, device="cpu")
    halves = train(tiny_config("train.batch_size=2", "train.accumulate=2"), tmp_path / "halves", max_steps=2,
                   device="cpu")
    assert whole.step == halves.step == 2
    la, lb = read_log(tmp_path / "whole" / "log.csv"), read_log(tmp_path / "halves" / "log.csv")
    assert [round(r["loss"], 5) for r in la] == [round(r["loss"], 5) for r in lb]
    a, _ = load_checkpoint(tmp_path / "whole" / "last.pt")
    b, _ = load_checkpoint(tmp_path / "halves" / "last.pt")
    sa, sb = a.state_dict(), b.state_dict()
    assert max(float((sa[k].float() - sb[k].float()).abs().max()) for k in sa) <= 1e-5
    # and it is not trivially equal to training on one clip per step
    single = train(tiny_config("train.batch_size=1", "data.samples_per_epoch=2"), tmp_path / "one", max_steps=2,
                   device="cpu")
    assert single.final_loss != pytest.approx(whole.final_loss, abs=1e-6)


# ------------------------------------------------------------------ DataLoader


def test_training_loader_pins_memory_on_cuda_keeps_workers_and_one_opencv_thread() -> None:
    import cv2

    plan = batches.RunBatches(n_samples=8, batch_size=2, world=1, rank=0, accumulate=1, seed=0, start=0, stop=4,
                              max_skip_at=lambda e: e)
    loader = batches.run_loader(list(range(8)), plan, workers=2, pin_memory=True)
    assert loader.pin_memory and loader.persistent_workers and loader.worker_init_fn is not None
    before = cv2.getNumThreads()
    try:
        loader.worker_init_fn(0)
        assert cv2.getNumThreads() == 1
    finally:
        cv2.setNumThreads(before)
    keys = list(plan)
    assert len(keys) == 4 and all(len(b) == 2 and b[0][:2] == (s // 4, s // 4) for s, b in enumerate(keys))


def test_run_loader_resumes_mid_epoch_with_the_same_samples() -> None:
    def plan(start: int) -> list:
        return list(batches.RunBatches(n_samples=6, batch_size=2, world=1, rank=0, accumulate=1, seed=1,
                                       start=start, stop=7, max_skip_at=lambda e: 2 * e))

    assert plan(0)[4:] == plan(4)


# ------------------------------------------------------------------ SyncBatchNorm


def test_trainable_batchnorm_becomes_syncbatchnorm_and_frozen_stays() -> None:
    torch.manual_seed(0)
    trained = build_model(get_preset("stm-tiny", freeze_bn=False))
    frozen = build_model(get_preset("stm-tiny"))
    names = trainable_batchnorms(trained)
    assert names and not trainable_batchnorms(frozen)
    params_before = {id(p) for p in trained.parameters()}
    x = torch.rand(1, 3, 32, 48)
    trained.eval()
    ref = trained.encode_query(x, None)
    assert sync_batchnorm(trained) == len(names)
    assert {id(p) for p in trained.parameters()} == params_before  # the optimizer keeps working
    assert all(isinstance(m, torch.nn.SyncBatchNorm) for n, m in trained.named_modules() if n in set(names))
    assert not trainable_batchnorms(trained)
    out = trained.encode_query(x, None)  # eval mode: SyncBatchNorm normalises as BatchNorm did (incl. activations)
    for a, b in zip(torch.utils._pytree.tree_leaves(ref), torch.utils._pytree.tree_leaves(out)):
        if isinstance(a, torch.Tensor):
            assert torch.allclose(a, b, atol=1e-6)
    assert sync_batchnorm(frozen) == 0


# ------------------------------------------------------------------ checkpoints


def test_last_checkpoint_is_written_once(tiny_config: Callable[..., TrainConfig], tmp_path: Path) -> None:
    out = tmp_path / "r"
    train(tiny_config(), out, max_steps=2, device="cpu")
    assert (out / "last.pt").stat().st_ino == (out / "step-2.pt").stat().st_ino  # a hard link, not a 2nd write


def test_last_checkpoint_falls_back_to_a_copy_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vosbench.train.checkpointing import link_or_copy

    src = tmp_path / "step-1.pt"
    src.write_bytes(b"weights")
    (tmp_path / "last.pt").write_bytes(b"old")

    def no_links(a, b):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    link_or_copy(src, tmp_path / "last.pt")
    assert (tmp_path / "last.pt").read_bytes() == b"weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "step-1.pt"]
    monkeypatch.setattr(os, "link", lambda a, b: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.raises(CheckpointError, match="no space left"):
        link_or_copy(src, tmp_path / "last.pt")
    assert (tmp_path / "last.pt").read_bytes() == b"weights"


# ------------------------------------------------------------------ logging per rank


def test_worker_logging_rank0_info_others_warnings_once_with_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    from vosbench_cli import common

    for rank in (0, 1):
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("RANK", str(rank))
        common.setup_logging()
        log = logging.getLogger("vosbench.test")
        assert log.isEnabledFor(logging.INFO) == (rank == 0)
        records: list[str] = []
        handler = logging.getLogger().handlers[0]
        for _ in range(3):
            record = log.makeRecord(log.name, logging.WARNING, __file__, 1, "same warning", (), None)
            if handler.filter(record):
                records.append(handler.format(record))
        # a log file (pytest's stderr is not a terminal) gets plain lines with the level named
        level = "" if common.err_console.is_terminal else "warning: "
        assert records == ([f"{level}same warning"] * 3 if rank == 0 else [f"[rank 1] {level}same warning"])
    logging.basicConfig(force=True)


def test_torchrun_entry_point_sets_up_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    from vosbench_cli import launch, train as train_cli

    seen: list[int] = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setattr(train_cli, "worker_app", lambda **kw: seen.append(logging.getLogger().level))
    logging.basicConfig(level=logging.WARNING, force=True)
    launch.main(["--config", "x.toml"])
    assert seen == [logging.INFO]
    logging.basicConfig(force=True)


# ------------------------------------------------------------------ the CLI launcher


def test_train_cli_passes_multi_node_options_to_torchrun(tiny_config: Callable[..., TrainConfig], tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from typer.testing import CliRunner

    from vosbench.train.config import write_config
    from vosbench_cli.main import app

    config = tmp_path / "c.toml"
    write_config(config, tiny_config())
    launched: list[list[str]] = []
    monkeypatch.setattr(subprocess, "call", lambda cmd, **kw: launched.append(cmd) or 0)
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    base = ["train", "--config", str(config), "--out", str(tmp_path / "r"), "--device", "cpu"]
    result = CliRunner().invoke(app, [*base, "--nnodes", "2", "--rdzv-endpoint", "node01:29400"])
    assert result.exit_code == 0, result.output
    flags = _torchrun_flags(launched[0])
    assert flags == ["--nproc-per-node=1", "--nnodes=2", "--rdzv-backend=c10d", "--rdzv-endpoint=node01:29400",
                     "--rdzv-id=vosbench-4242"]
    result = CliRunner().invoke(app, [*base, "--nnodes", "2"])
    assert result.exit_code == 1 and "error: --nnodes 2 needs --rdzv-endpoint" in result.output
    assert len(launched) == 1 and not (tmp_path / "r").exists()


def test_train_cli_nproc_beyond_visible_gpus_is_one_line(tiny_config: Callable[..., TrainConfig], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from typer.testing import CliRunner

    from vosbench import precision
    from vosbench.train.config import write_config
    from vosbench_cli.main import app

    config = tmp_path / "c.toml"
    write_config(config, tiny_config("train.batch_size=4"))
    launched: list[list[str]] = []
    monkeypatch.setattr(subprocess, "call", lambda cmd, **kw: launched.append(cmd) or 0)
    monkeypatch.setattr(precision, "resolve_device", lambda d="auto": torch.device("cuda", 0))
    monkeypatch.setattr(precision, "resolve_precision", lambda p, d, purpose="infer": "fp32")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    result = CliRunner().invoke(app, ["train", "--config", str(config), "--out", str(tmp_path / "r"), "--nproc", "4",
                                      "--device", "cuda"])
    assert result.exit_code == 1 and "local rank 3 has no GPU: 2 visible" in result.output, result.output
    assert not launched


# ------------------------------------------------------------------ DDP without find_unused_parameters


def _clip_batch(model_cfg, b: int = 1, t: int = 3, k: int = 2, h: int = 64, w: int = 64) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    target = torch.zeros(b, t, h, w, dtype=torch.long)
    target[:, :, 8:40, 8:30] = 1
    target[:, :, 20:60, 34:60] = 2
    masks = (target.unsqueeze(2) == torch.arange(1, k + 1).view(1, 1, k, 1, 1)).float()
    batch = {"images": torch.rand(b, t, 3, h, w, generator=g), "masks": masks, "target": target,
             "valid": torch.ones(b, k, dtype=torch.bool)}
    if model_cfg.depth:
        batch["depth"] = torch.rand(b, t, 1, h, w, generator=g)
    if model_cfg.spatial_prior:
        batch["prior"] = masks.clone()
    return batch


@pytest.mark.slow
def test_every_preset_step_gives_every_trainable_parameter_a_gradient() -> None:
    """What DDP without find_unused_parameters needs (a parameter without a gradient would stall
    its bucket's all-reduce); all presets, the big ones at random init, one 3-frame clip at 64x64.
    (The own-prediction prior of SCM's final phase runs under DDP in test_cluster_ddp.py.)"""
    from vosbench.models.registry import list_presets
    from vosbench.train.loop import clip_forward

    for name in list_presets():
        cfg = get_preset(name).replace(backbone_weights=None)
        torch.manual_seed(0)
        model = build_model(cfg)
        model.train()
        loss, _ = clip_forward(model, _clip_batch(cfg), cfg)
        loss.backward()
        missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
        assert not missing, (name, missing[:5])


def test_run_long_loader_with_workers_trains_on_the_same_clips_across_epochs(tiny_config: Callable[..., TrainConfig],
                                                                             tmp_path: Path) -> None:
    """Workers (kept across epochs, keys carry the epoch and maximum skip) sample what the main process does."""
    train(tiny_config("data.workers=2", "train.epochs=2"), tmp_path / "workers", device="cpu")
    train(tiny_config("data.workers=0", "train.epochs=2"), tmp_path / "main", device="cpu")
    a, b = read_log(tmp_path / "workers" / "log.csv"), read_log(tmp_path / "main" / "log.csv")
    assert [r["step"] for r in a] == [1, 2, 3, 4] and [r["epoch"] for r in a] == [0, 0, 1, 1]
    # equal up to float noise (threads differ between a worker and the main process)
    assert [r["loss"] for r in a] == pytest.approx([r["loss"] for r in b], rel=1e-5)
