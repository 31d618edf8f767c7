"""The memory cap of the defaults and of every shipped recipe and ladder keeps every frame STM
keeps on DAVIS-2017 and YouTube-VOS lengths (STM itself never evicts).

Lengths held here: the longest DAVIS-2017 video has 104 frames (val ``cows``); YouTube-VOS clips
are at most 180 frames at 30 fps (annotated every 5th frame, on the engine's 5-frame schedule) and
36 frames in the 6 fps release, where objects may join on any frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vosbench.ablation.ladder import load_ladder
from vosbench.infer.engine import DEFAULT_MAX_MEM_FRAMES, EngineConfig, InferenceCore
from vosbench.infer.recipe import load_recipe
from vosbench.infer.run import InferOptions

from .standin import StandInModel

REPO = Path(__file__).resolve().parents[2]
DAVIS_2017_LONGEST = 104
YOUTUBE_VOS_30FPS_LONGEST = 180
YOUTUBE_VOS_6FPS_LONGEST = 36


def _run(config: EngineConfig, frames: int, joins: dict[int, int] | None = None) -> InferenceCore:
    """Propagate a 16x16 random video; ``joins`` maps frame -> object id introduced there."""
    g = torch.Generator().manual_seed(0)
    core = InferenceCore(StandInModel(), config)
    joins = {0: 1, **(joins or {})}
    for t in range(frames):
        mask = None
        if t in joins:
            mask = np.zeros((16, 16), np.uint8)
            mask[joins[t] % 16, :] = joins[t]
        core.step(torch.rand(3, 16, 16, generator=g), mask)
    return core


def _stm_frames(frames: int, mem_every: int = 5) -> list[int]:
    """Frames STM reads when segmenting the last frame: every mem_every-th before it and the previous one."""
    last = frames - 1
    return sorted(set(range(0, last - 1, mem_every)) | {last - 1})


@pytest.mark.parametrize("frames", [DAVIS_2017_LONGEST, YOUTUBE_VOS_30FPS_LONGEST])
def test_default_cap_keeps_every_stm_frame(frames):
    core = _run(EngineConfig(), frames)
    assert core.memory.evictions == 0
    assert sorted(core.memory.frames) == _stm_frames(frames)


def test_default_cap_keeps_objects_joining_off_schedule_at_6fps():
    joins = {1: 2, 2: 3, 3: 4, 4: 5, 6: 6, 7: 7}  # every join is a protected permanent frame
    core = _run(EngineConfig(), YOUTUBE_VOS_6FPS_LONGEST, joins)
    assert core.memory.evictions == 0
    assert set(_stm_frames(YOUTUBE_VOS_6FPS_LONGEST)) | set(joins) | {0} == set(core.memory.frames)


def test_what_the_cap_costs_in_frames():
    # 180 frames at mem_every=5: permanent frames 0, 5, ..., 175 (36) + the temporary slot
    assert len(_stm_frames(YOUTUBE_VOS_30FPS_LONGEST)) == 37 <= DEFAULT_MAX_MEM_FRAMES
    assert len(_stm_frames(DAVIS_2017_LONGEST)) == 22
    # the old recipe value evicts on DAVIS val: the check above can fail
    assert _run(EngineConfig(max_mem_frames=20), DAVIS_2017_LONGEST).memory.evictions > 0


def _shipped_options() -> list[tuple[str, InferOptions]]:
    found = []
    for path in sorted((REPO / "submissions").glob("*.toml")):
        found.append((path.name, InferOptions.resolve(load_recipe(path))))
    for path in sorted((REPO / "ablations").glob("*.toml")):
        for rung in load_ladder(path).rungs:
            found.append((f"{path.name}:{rung.name}", InferOptions.resolve(**rung.infer_options)))
    return found


def test_every_shipped_recipe_and_ladder_keeps_every_stm_frame():
    shipped = _shipped_options()
    assert len(shipped) >= 3 + 4  # three submission recipes, four ladders' rungs
    needed = len(_stm_frames(YOUTUBE_VOS_30FPS_LONGEST))
    for name, options in shipped:
        engine = options.engine()
        assert engine.mem_every == 5, name
        assert engine.max_mem_frames >= needed, f"{name}: max_mem_frames {engine.max_mem_frames} < {needed}"


def test_cli_help_states_the_default_cap():
    assert f"default {DEFAULT_MAX_MEM_FRAMES}:" in (REPO / "cli" / "infer.py").read_text()
