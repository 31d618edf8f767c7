"""Frame sampling bounds and the epoch schedules (skip curriculum, lr decay, prior switch)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from vosbench.errors import ConfigError
from vosbench.train.config import CurriculumSection, OptimSection, TrainConfig
from vosbench.train.curriculum import in_final_phase, lr_at, lr_at_step, max_skip_at
from vosbench.train.datasets import sample_frame_indices


@pytest.mark.parametrize("n,max_skip", [(3, 0), (10, 0), (10, 2), (50, 25), (4, 25)])
def test_sampled_frames_are_ordered_and_within_skip(n: int, max_skip: int) -> None:
    rng = np.random.default_rng(0)
    gaps = set()
    for _ in range(300):
        idx = sample_frame_indices(rng, n, 3, max_skip)
        assert len(idx) == 3 and 0 <= idx[0] and idx[-1] < n
        for a, b in itertools.pairwise(idx):
            assert a < b, idx
            assert b - a - 1 <= max_skip, idx
            gaps.add(b - a - 1)
    if max_skip == 0:
        assert gaps == {0}
    elif n >= 3 * (max_skip + 1):
        assert max_skip in gaps  # the bound is reached


def test_short_videos_repeat_frames_in_order() -> None:
    rng = np.random.default_rng(1)
    for _ in range(50):
        idx = sample_frame_indices(rng, 2, 3, 5)
        assert idx[0] == 0 and idx == sorted(idx) and max(idx) <= 1
    assert sample_frame_indices(rng, 1, 3, 5) == [0, 0, 0]


def test_dstm_skip_grows_from_0_to_25() -> None:
    cfg = CurriculumSection(start_skip=0, end_skip=25, ramp_epochs=100)
    values = [max_skip_at(cfg, e, 150) for e in range(150)]
    assert values[0] == 0 and values[50] in (12, 13)
    assert values[100] == 25 and values[-1] == 25
    assert all(a <= b for a, b in itertools.pairwise(values))


def test_scm_skip_drops_in_the_last_epochs() -> None:
    cfg = CurriculumSection(start_skip=5, end_skip=25, ramp_epochs=10, final_skip=5, final_epochs=3)
    assert max_skip_at(cfg, 0, 20) == 5
    assert max_skip_at(cfg, 16, 20) == 25
    assert [max_skip_at(cfg, e, 20) for e in (17, 18, 19)] == [5, 5, 5]


def test_constant_skip_without_ramp() -> None:
    assert max_skip_at(CurriculumSection(end_skip=7), 0, 10) == 7


def test_lr_halves_after_decay_epochs() -> None:
    cfg = OptimSection(lr=1e-5, lr_decay=0.5, lr_decay_epochs=[100])
    assert lr_at(cfg, 99) == 1e-5
    assert lr_at(cfg, 100) == 5e-6
    cfg2 = OptimSection(lr=1.0, lr_decay=0.5, lr_decay_epochs=[1, 3])
    assert [lr_at(cfg2, e) for e in range(4)] == [1.0, 0.5, 0.5, 0.25]


def test_step_schedule_per_step_follows_the_epoch() -> None:
    cfg = OptimSection(lr=1.0, lr_decay=0.5, lr_decay_epochs=[2])
    assert [lr_at_step(cfg, s, 10, 40) for s in (0, 19, 20, 39)] == [1.0, 1.0, 0.5, 0.5]


def test_cosine_schedule_hand_computed() -> None:
    # 5 steps, no warm-up: s/S = 0, 1/4, 2/4, 3/4, 1 -> (1 + cos(pi x)) / 2 = 1, 0.8536, 0.5, 0.1464, 0
    cfg = OptimSection(lr=2.0, schedule="cosine")
    got = [lr_at_step(cfg, s, 3, 5) for s in range(5)]
    assert got == pytest.approx([2.0, 1.70711, 1.0, 0.29289, 0.0], abs=1e-5)
    # min_lr_ratio 0.1: lr * (0.1 + 0.9 * c)
    cfg = OptimSection(lr=2.0, schedule="cosine", min_lr_ratio=0.1)
    assert lr_at_step(cfg, 2, 3, 5) == pytest.approx(2.0 * (0.1 + 0.9 * 0.5))
    assert lr_at_step(cfg, 4, 3, 5) == pytest.approx(0.2)
    assert lr_at_step(cfg, 9, 3, 5) == pytest.approx(0.2)  # past the end: stays at the floor


def test_warmup_ramps_linearly_then_cosine_starts_at_lr() -> None:
    cfg = OptimSection(lr=1.0, schedule="cosine", warmup_steps=4)
    # steps 0..3: (s + 1) / 4 of the cosine's value, which is lr until the warm-up ends
    assert [lr_at_step(cfg, s, 10, 9) for s in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    # after it: 9 - 4 - 1 = 4 steps of cosine span; step 6 is 2/4 of the way -> 0.5
    assert lr_at_step(cfg, 4, 10, 9) == pytest.approx(1.0)
    assert lr_at_step(cfg, 6, 10, 9) == pytest.approx(0.5)
    assert lr_at_step(cfg, 8, 10, 9) == pytest.approx(0.0, abs=1e-12)
    step = OptimSection(lr=1.0, lr_decay=0.5, lr_decay_epochs=[1], warmup_steps=2)
    assert [lr_at_step(step, s, 2, 4) for s in range(4)] == [0.5, 1.0, 0.5, 0.5]


@pytest.mark.parametrize("key,value", [("schedule", "linear"), ("min_lr_ratio", 1.5), ("warmup_steps", -1)])
def test_bad_schedule_settings_name_the_key(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"optim.{key}"):
        TrainConfig.from_dict({"optim": {key: value}})


def test_prior_switch_and_skip_drop_are_one_phase() -> None:
    off = CurriculumSection(end_skip=25, final_skip=-1, final_epochs=2)
    assert not any(in_final_phase(off, e, 5) for e in range(5))
    c = CurriculumSection(end_skip=25, final_skip=5, final_epochs=2)
    assert [in_final_phase(c, e, 5) for e in range(5)] == [False, False, False, True, True]
    assert [max_skip_at(c, e, 5) for e in range(5)] == [25, 25, 25, 5, 5]


@pytest.mark.parametrize("name", ["dstm-tiny", "dstm-r50-main"])
def test_shipped_dstm_configs_reach_their_end_skip(name: str) -> None:
    """D-STM grows the skip over the whole run: the last epoch must sample with the full end_skip."""
    from pathlib import Path

    from vosbench.train.run import resolve_run_config

    cfg = resolve_run_config(Path(__file__).resolve().parents[2] / "configs" / f"{name}.toml")
    values = [max_skip_at(cfg.curriculum, e, cfg.train.epochs) for e in range(cfg.train.epochs)]
    assert values[0] == cfg.curriculum.start_skip == 0
    assert values[-1] == cfg.curriculum.end_skip
    assert values[int(0.8 * cfg.train.epochs)] < cfg.curriculum.end_skip  # still growing late in the run
