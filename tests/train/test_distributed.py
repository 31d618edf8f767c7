"""DDP on CPU (gloo): two workers with half the batch each reach the weights of one worker.

The equality holds for frozen BatchNorm (the presets' default) and batch-decomposable losses (CE,
Lovász). Trained BN (the tiny configs' ``freeze_bn = false``) normalises with each worker's own
half batch, and the soft IoU term averages over each worker's valid objects, so those runs are
close to, not equal to, a 1-worker run.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from vosbench.models import load_checkpoint
from vosbench.train.config import TrainConfig, write_config
from vosbench.train.distributed import launch_command
from vosbench.train.loop import train
from vosbench.train.trainlog import read_log

REPO = Path(__file__).resolve().parents[2]
# Gloo sums the two half-batch gradients in another order than one process sums the whole batch,
# so weights agree to float32 rounding, amplified a little by Adam's normalisation.
ATOL = 1e-5


@pytest.mark.slow
def test_two_gloo_workers_match_one_worker(tiny_config: Callable[..., TrainConfig], tmp_path: Path) -> None:
    cfg = tiny_config("train.epochs=2", "train.batch_size=2")  # 4 steps, global batch 2
    single = train(cfg, tmp_path / "one", device="cpu")
    config_path = tmp_path / "c.toml"
    write_config(config_path, cfg)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    cmd = launch_command(2, ["--config", str(config_path), "--out", str(tmp_path / "two"), "--device", "cpu"])
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, _ = load_checkpoint(tmp_path / "one" / "last.pt")
    b, extra = load_checkpoint(tmp_path / "two" / "last.pt")
    assert extra["step"] == single.step == 4
    sa, sb = a.state_dict(), b.state_dict()
    worst = max(float((sa[k].float() - sb[k].float()).abs().max()) for k in sa)
    assert worst <= ATOL, worst
    # the weights did move, so the comparison means something
    assert any(not torch.equal(sa[k], b0) for k, b0 in _initial(cfg).items())
    la, lb = read_log(tmp_path / "one" / "log.csv"), read_log(tmp_path / "two" / "log.csv")
    assert [r["step"] for r in lb] == [1, 2, 3, 4]
    assert all(abs(x["loss"] - y["loss"]) < 1e-4 for x, y in zip(la, lb))


def _initial(cfg: TrainConfig) -> dict[str, torch.Tensor]:
    from vosbench.models import build_model, get_preset

    torch.manual_seed(cfg.train.seed)
    return build_model(get_preset(cfg.model.preset)).state_dict()
