"""DDP on CPU (gloo) with real processes: every tiny preset steps without DDP's unused-parameter
search; a rank that does not see rank 0's --out stops the whole job in one line; two torchrun
"nodes" (nnodes=2, c10d rendezvous on 127.0.0.1) sharing --out resume consistently."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from vosbench.models import load_checkpoint
from vosbench.train.config import TrainConfig, write_config
from vosbench.train.distributed import launch_command
from vosbench.train.loop import train
from vosbench.train.trainlog import read_log

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "TORCHELASTIC_"))
           and k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), VOSBENCH_SHARED_WAIT="2", **extra)
    return env


def _wait_all(procs: list[subprocess.Popen]) -> list[subprocess.CompletedProcess]:
    """Wait for every process (killing all of them after TIMEOUT s); their exit codes and output."""
    done = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=TIMEOUT)
            done.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return done


def _run_ranks(cmds: list[list[str]], port: int) -> list[subprocess.CompletedProcess]:
    """Start one process per command as ranks 0..N-1 of a gloo group on 127.0.0.1:port; wait for all."""
    return _wait_all([subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                       env=_env(RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE=str(len(cmds)),
                                                MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)))
                      for r, cmd in enumerate(cmds)])


_EVERY_CONFIG = """
import faulthandler, json, sys
faulthandler.dump_traceback_later(100, exit=True)  # a hang shows where, instead of the test's timeout
from vosbench.train.config import load_config
from vosbench.train.loop import train
import os
jobs = json.loads(sys.argv[1])
for path, overrides, out, port in jobs:
    os.environ["MASTER_PORT"] = str(port)  # a fresh store per process group (re-using one port races)
    result = train(load_config(path, overrides), out, max_steps=2, device="cpu")
    assert result.step == 2, result
print("ok")
"""


@pytest.mark.slow
def test_every_tiny_config_trains_under_ddp_without_unused_parameter_search(train_root: Path, tmp_path: Path) -> None:
    from vosbench.data.imageio import write_depth

    for frame in (train_root / "JPEGImages" / "480p").glob("*/*.jpg"):  # D-STM reads depth maps
        write_depth(train_root / "Depth" / "480p" / frame.parent.name / f"{frame.stem}.png",
                    np.full((48, 64), 0.5, np.float32))
    overrides = [f"data.root={train_root}", "data.crop=[32, 48]", "data.short_side=[40, 48]",
                 "data.samples_per_epoch=8", "train.batch_size=2", "train.threads=1",
                 # the final phase (own-prediction prior) from the start, so SCM's both prior paths run
                 "train.epochs=4", "curriculum.final_epochs=4", "curriculum.final_skip=1"]
    configs = sorted((REPO / "configs").glob("*tiny*.toml"))
    assert len(configs) >= 6
    jobs = json.dumps([[str(c), overrides, str(tmp_path / c.stem), _free_port()] for c in configs])
    port = _free_port()
    cmd = [sys.executable, "-c", _EVERY_CONFIG, jobs]
    ranks = _run_ranks([cmd, cmd], port)
    for r in ranks:
        assert r.returncode == 0, r.stderr[-3000:]
    for c in configs:
        assert load_checkpoint(tmp_path / c.stem / "last.pt")[1]["step"] == 2


def test_rank_that_cannot_see_out_stops_every_rank_in_one_line(tiny_config: Callable[..., TrainConfig],
                                                              tmp_path: Path) -> None:
    cfg = tiny_config()
    train(cfg, tmp_path / "node0", max_steps=2, device="cpu")  # rank 0's node-local --out holds step 2
    config_path = tmp_path / "c.toml"
    write_config(config_path, cfg)

    def cmd(out: Path) -> list[str]:
        return [sys.executable, "-m", "vosbench_cli.launch", "--config", str(config_path), "--out", str(out),
                "--device", "cpu", "--resume", "--max-steps", "4"]

    rank0, rank1 = _run_ranks([cmd(tmp_path / "node0"), cmd(tmp_path / "node1")], _free_port())
    assert rank0.returncode == 1 and rank1.returncode == 1
    errors = [line for line in rank0.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, rank0.stderr[-3000:]
    assert "rank 1:" in errors[0] and "storage every node shares" in errors[0]
    assert "Traceback" not in rank0.stderr + rank1.stderr
    assert load_checkpoint(tmp_path / "node0" / "last.pt")[1]["step"] == 2  # nothing resumed on one side only
    assert not (tmp_path / "node1").exists()
    assert not list((tmp_path / "node0").glob(".vosbench-shared*"))


def _two_nodes(cfg_path: Path, out: Path, port: int, *extra: str) -> list[subprocess.CompletedProcess]:
    """Two torchrun "nodes" (1 worker each) meeting at a c10d rendezvous on 127.0.0.1:port."""
    args = ["--config", str(cfg_path), "--out", str(out), "--device", "cpu", *extra]
    cmd = launch_command(1, args, nnodes=2, rdzv_endpoint=f"127.0.0.1:{port}", rdzv_id=f"test-{port}")
    return _wait_all([subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                       env=_env()) for _ in range(2)])


@pytest.mark.slow
def test_two_torchrun_nodes_sharing_out_resume_consistently(tiny_config: Callable[..., TrainConfig],
                                                            tmp_path: Path) -> None:
    cfg = tiny_config("train.epochs=2", "train.batch_size=2")  # 4 steps, global batch 2, frozen BN
    config_path = tmp_path / "c.toml"
    write_config(config_path, cfg)
    shared = tmp_path / "shared-out"
    for node in _two_nodes(config_path, shared, _free_port(), "--max-steps", "2"):
        assert node.returncode == 0, node.stderr[-3000:]
    assert load_checkpoint(shared / "last.pt")[1]["step"] == 2
    for node in _two_nodes(config_path, shared, _free_port(), "--resume"):  # both nodes continue from step 2
        assert node.returncode == 0, node.stderr[-3000:]
    model, extra = load_checkpoint(shared / "last.pt")
    assert extra["step"] == 4
    assert [r["step"] for r in read_log(shared / "log.csv")] == [1, 2, 3, 4]
    # the interrupted 2-node run is the uninterrupted 1-process run with the same global batch
    single = train(cfg, tmp_path / "one", device="cpu")
    ref, _ = load_checkpoint(tmp_path / "one" / "last.pt")
    sa, sb = ref.state_dict(), model.state_dict()
    assert max(float((sa[k].float() - sb[k].float()).abs().max()) for k in sa) <= 1e-5
    la, lb = read_log(tmp_path / "one" / "log.csv"), read_log(shared / "log.csv")
    assert single.step == 4 and all(abs(x["loss"] - y["loss"]) < 1e-4 for x, y in zip(la, lb))
