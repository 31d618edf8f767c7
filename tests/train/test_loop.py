"""The training loop: learning, exact resume, NaN stop, full disk, architecture mismatch."""

from __future__ import annotations

import errno
import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from vosbench.errors import CheckpointError
from vosbench.models import load_checkpoint
from vosbench.train import loop
from vosbench.train.config import TrainConfig
from vosbench.train.loop import NonFiniteLossError, train
from vosbench.train.trainlog import read_log


def _weights(path: Path) -> dict[str, torch.Tensor]:
    model, _ = load_checkpoint(path)
    return model.state_dict()


def test_training_reduces_loss_and_writes_outputs(tiny_config: Callable[..., TrainConfig], tmp_path: Path) -> None:
    cfg = tiny_config("train.epochs=4", "optim.lr=3e-4", "train.batch_size=1", "data.samples_per_epoch=2")
    out = tmp_path / "run"
    result = train(cfg, out, device="cpu")
    rows = read_log(out / "log.csv")
    assert result.step == 8 == len(rows) and [r["step"] for r in rows] == list(range(1, 9))
    first = sum(r["loss"] for r in rows[:2]) / 2
    last = sum(r["loss"] for r in rows[-2:]) / 2
    assert last < 0.8 * first, (first, last)
    for name in ("last.pt", "step-4.pt", "step-6.pt", "step-8.pt", "config.toml"):
        assert (out / name).is_file(), name
    assert not (out / "step-2.pt").exists()  # train.keep_checkpoints = 3: the oldest step file is pruned
    model, extra = load_checkpoint(out / "last.pt", expect=None)
    assert extra["step"] == 8 and model.config.name == "stm-tiny"
    assert "optimizer" in extra and "rng" in extra
    from vosbench.train.config import load_config

    assert load_config(out / "config.toml") == cfg


def test_resume_continues_the_same_run(tiny_config: Callable[..., TrainConfig], tmp_path: Path) -> None:
    cfg = tiny_config("train.epochs=2", "train.save_every=4", "train.batch_size=1", "data.samples_per_epoch=2")
    full = train(cfg, tmp_path / "full", device="cpu")
    part = train(cfg, tmp_path / "part", max_steps=3, device="cpu")
    assert part.step == 3 and (tmp_path / "part" / "step-3.pt").is_file()
    resumed = train(cfg, tmp_path / "part", resume=True, device="cpu")
    assert full.step == resumed.step == 4
    a, b = read_log(tmp_path / "full" / "log.csv"), read_log(tmp_path / "part" / "log.csv")
    assert [r["step"] for r in b] == list(range(1, 5))
    # same loss curve, bit for bit (CPU, same thread count)
    assert [r["loss"] for r in a] == [r["loss"] for r in b]
    wa, wb = _weights(tmp_path / "full" / "last.pt"), _weights(tmp_path / "part" / "last.pt")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    # resuming a finished run trains nothing and reports the run's last loss
    before = (tmp_path / "part" / "last.pt").stat().st_mtime_ns
    again = train(cfg, tmp_path / "part", resume=True, device="cpu")
    assert again.step == 4 and again.final_loss == b[-1]["loss"]
    assert (tmp_path / "part" / "last.pt").stat().st_mtime_ns == before


class _KillAfter:
    """A progress reporter that interrupts the run (as Ctrl-C or a kill would) once ``steps`` steps are done."""

    def __init__(self, steps: int):
        self.steps, self.done = steps, 0

    def start(self, description: str, total: int | None = None) -> None:
        pass

    def update(self, description: str) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.done >= self.steps:
            raise KeyboardInterrupt


def test_killed_run_resumes_from_its_last_checkpoint(tiny_config: Callable[..., TrainConfig], tmp_path: Path) -> None:
    # SCM: in the final phase (epoch 1) the spatial prior is the model's own prediction, lr halves, max skip changes
    cfg = tiny_config("model.preset=scm-tiny", "train.epochs=2", "train.batch_size=1", "data.samples_per_epoch=2",
                      "train.save_every=2", "optim.lr_decay_epochs=[1]", "curriculum.ramp_epochs=1",
                      "curriculum.final_skip=2", "curriculum.final_epochs=1")
    train(cfg, tmp_path / "full", device="cpu")
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "part", device="cpu", progress=_KillAfter(3))
    _, extra = load_checkpoint(tmp_path / "part" / "last.pt")
    assert extra["step"] == 2 and not (tmp_path / "part" / "step-3.pt").exists()
    assert [r["step"] for r in read_log(tmp_path / "part" / "log.csv")] == [1, 2, 3]  # step 3 is redone
    resumed = train(cfg, tmp_path / "part", resume=True, device="cpu")
    assert resumed.step == 4
    a, b = read_log(tmp_path / "full" / "log.csv"), read_log(tmp_path / "part" / "log.csv")
    assert [r["step"] for r in b] == [1, 2, 3, 4]
    assert [r["loss"] for r in a] == [r["loss"] for r in b]
    assert [r["lr"] for r in b] == [1e-4, 1e-4, 5e-5, 5e-5]
    assert [r["max_skip"] for r in b] == [0, 0, 2, 2] and [r["own_prior"] for r in b] == [0, 0, 1, 1]
    wa, wb = _weights(tmp_path / "full" / "last.pt"), _weights(tmp_path / "part" / "last.pt")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    _, extra = load_checkpoint(tmp_path / "part" / "last.pt")
    assert extra["scheduler"]["lr"] == 5e-5 and extra["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)


def test_main_stage_starts_from_the_pretraining_checkpoint(tiny_config: Callable[..., TrainConfig], tmp_path: Path) -> None:
    from vosbench.models import build_model, get_preset

    pre = train(tiny_config("data.stage=static", "train.epochs=1"), tmp_path / "pre", device="cpu")
    assert pre.step == 2
    # lr 1e-12: one Adam step moves each weight by ~1e-12, so the main stage's weights are the loaded ones
    main = tiny_config(f"train.init_checkpoint={pre.last_checkpoint}", "optim.lr=1e-12")
    train(main, tmp_path / "main", max_steps=1, device="cpu")
    wp, wm = _weights(tmp_path / "pre" / "last.pt"), _weights(tmp_path / "main" / "last.pt")
    assert max(float((wp[k].float() - wm[k].float()).abs().max()) for k in wp) < 1e-8
    torch.manual_seed(0)
    fresh = build_model(get_preset("stm-tiny")).state_dict()
    assert max(float((wp[k].float() - fresh[k].float()).abs().max()) for k in wp) > 1e-4  # pretraining moved them
    with pytest.raises(CheckpointError, match="differs"):
        train(tiny_config(f"train.init_checkpoint={pre.last_checkpoint}", "model.preset=scm-tiny",
                          "train.init_strict=true"), tmp_path / "x", device="cpu")
    with pytest.raises(CheckpointError, match="init_checkpoint not found"):
        train(tiny_config(f"train.init_checkpoint={tmp_path / 'nope.pt'}"), tmp_path / "y", device="cpu")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_resume_checks_the_checkpoint_and_warns_on_a_changed_config(
    tiny_config: Callable[..., TrainConfig], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from vosbench.models import save_checkpoint

    out = tmp_path / "r"
    train(tiny_config(), out, max_steps=1, device="cpu")
    with caplog.at_level("WARNING", logger="vosbench.train.loop"):
        train(tiny_config("optim.lr=2e-4", "train.log_every=3"), out, resume=True, max_steps=2, device="cpu")
    assert "differs from the run's in optim.lr;" in caplog.text  # log_every does not change the run
    model, _ = load_checkpoint(out / "last.pt")
    save_checkpoint(tmp_path / "plain" / "last.pt", model)  # weights + config only (e.g. an exported model)
    with pytest.raises(CheckpointError, match="not a training checkpoint .*optimizer"):
        train(tiny_config(), tmp_path / "plain", resume=True, device="cpu")


def test_existing_run_needs_resume(tiny_config: Callable[..., TrainConfig], tmp_path: Path) -> None:
    cfg = tiny_config()
    train(cfg, tmp_path / "r", max_steps=1, device="cpu")
    with pytest.raises(CheckpointError, match="--resume"):
        train(cfg, tmp_path / "r", max_steps=1, device="cpu")


def test_resume_with_another_architecture_is_refused(tiny_config: Callable[..., TrainConfig], tmp_path: Path) -> None:
    train(tiny_config(), tmp_path / "r", max_steps=1, device="cpu")
    with pytest.raises(CheckpointError, match="differs"):
        train(tiny_config("model.preset=scm-tiny"), tmp_path / "r", resume=True, device="cpu")


def _poison_from_call(monkeypatch: pytest.MonkeyPatch, first_bad_call: int) -> None:
    """Make the loss NaN from the ``first_bad_call``-th frame loss on (2 frames per step)."""
    calls = {"n": 0}
    real = loop._segmentation_loss

    def poisoned(output, target, loss_cfg, valid):
        calls["n"] += 1
        total, parts = real(output, target, loss_cfg, valid)
        if calls["n"] >= first_bad_call:
            total = total * float("nan")
        return total, parts

    monkeypatch.setattr(loop, "_segmentation_loss", poisoned)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(
    tiny_config: Callable[..., TrainConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _poison_from_call(monkeypatch, 5)  # calls 5, 6 are step 3
    out = tmp_path / "r"
    with pytest.raises(NonFiniteLossError, match=r"loss became nan at step 3 .*last good checkpoint"):
        train(tiny_config(), out, device="cpu")
    _, extra = load_checkpoint(out / "last.pt")
    assert extra["step"] == 2
    assert not (out / "step-3.pt").exists()
    assert [r["step"] for r in read_log(out / "log.csv")] == [1, 2]


def test_nan_loss_before_any_checkpoint_still_logs_the_good_steps(
    tiny_config: Callable[..., TrainConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _poison_from_call(monkeypatch, 5)
    out = tmp_path / "r"
    with pytest.raises(NonFiniteLossError, match="at step 3 .*no checkpoint was saved yet"):
        train(tiny_config("train.save_every=100", "train.log_every=50"), out, device="cpu")
    assert not (out / "last.pt").exists()
    assert [r["step"] for r in read_log(out / "log.csv")] == [1, 2]


def test_disk_full_on_save_keeps_previous_checkpoint(
    tiny_config: Callable[..., TrainConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "r"
    train(tiny_config(), out, max_steps=2, device="cpu")
    before = (out / "last.pt").read_bytes()
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)  # writes the temp file, then the disk "fills up"
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(CheckpointError, match="no space left on device; the previous checkpoint .*last.pt is intact"):
        train(tiny_config(), out, resume=True, max_steps=4, device="cpu")
    assert (out / "last.pt").read_bytes() == before
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left


@pytest.mark.parametrize("name", sorted(p.name for p in (Path(__file__).resolve().parents[2] / "configs").glob("*tiny*.toml")))
def test_shipped_tiny_config_trains_a_step(name: str, train_root: Path, tmp_path: Path) -> None:
    import numpy as np

    from vosbench.data.imageio import write_depth
    from vosbench.train.config import load_config

    for frame in (train_root / "JPEGImages" / "480p").glob("*/*.jpg"):  # D-STM reads depth maps
        write_depth(train_root / "Depth" / "480p" / frame.parent.name / f"{frame.stem}.png",
                    np.full((48, 64), 0.5, np.float32))
    path = Path(__file__).resolve().parents[2] / "configs" / name
    cfg = load_config(path, [f"data.root={train_root}", "data.crop=[32, 48]", "data.short_side=[40, 48]",
                             "data.samples_per_epoch=8", "train.batch_size=2"])
    result = train(cfg, tmp_path / "r", max_steps=1, device="cpu")
    assert result.step == 1 and math.isfinite(result.final_loss)
    model, extra = load_checkpoint(tmp_path / "r" / "last.pt")
    assert model.config.name == cfg.model.preset and extra["train_config"]["model"] == cfg.to_dict()["model"]


def test_each_step_trains_at_the_cosine_schedules_lr(tiny_config: Callable[..., TrainConfig], tmp_path: Path) -> None:
    # 3 epochs x 2 steps, warm-up 2: 0.5, 1.0 x lr, then a cosine over the remaining 4 steps
    # (span 3): 1, 0.75, 0.25, 0 of lr (the last two halves of (1 + cos(pi s / 3)) / 2).
    cfg = tiny_config("optim.lr=1e-4", 'optim.schedule="cosine"', "optim.warmup_steps=2")
    rows = read_log(train(cfg, tmp_path / "run", device="cpu").out_dir / "log.csv")
    assert [r["lr"] for r in rows] == pytest.approx([0.5e-4, 1e-4, 1e-4, 0.75e-4, 0.25e-4, 0.0], abs=1e-12)
    _, extra = load_checkpoint(tmp_path / "run" / "last.pt", expect=None)
    assert extra["scheduler"]["kind"] == "cosine"
