"""InferenceCore with a stand-in model: schedule, padding, cap, late objects, priors, depth."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vosbench.errors import ConfigError
from vosbench.infer.engine import EngineConfig, InferenceCore

from .standin import StandInModel

H, W = 40, 56  # not multiples of 16: exercises padding


def _video(n: int, seed: int = 0) -> tuple[list[torch.Tensor], np.ndarray]:
    g = torch.Generator().manual_seed(seed)
    frames = [torch.rand(3, H, W, generator=g) for _ in range(n)]
    mask = np.zeros((H, W), np.uint8)
    mask[5:20, 5:25] = 1
    mask[22:35, 30:50] = 3
    return frames, mask


def _naive(model, frames, mask, mem_every: int = 5, pads: tuple[int, int, int, int] = (0, 0, 0, 0)) -> list[torch.Tensor]:
    """The STM evaluation loop written out directly: memory concatenated at every step, the
    previous frame's soft masks memorised. ``pads`` (left, right, top, bottom), given by hand, zero-pad
    every frame and mask first (STM's padding) and are cropped off the outputs."""
    l, r, t, b = pads
    pad = lambda x: torch.nn.functional.pad(x, pads)  # zeros: black frame, empty masks
    crop = lambda x: x[..., t : x.shape[-2] - b, l : x.shape[-1] - r]
    m = torch.from_numpy(mask).long()
    probs = torch.stack([(m == 0), (m == 1), (m == 3)]).float()[None]  # 1,K+1,H,W
    keys, values, outs = [], [], [probs[0]]
    with torch.inference_mode():
        for i in range(1, len(frames)):
            mem = model.encode_memory(pad(frames[i - 1][None]), pad(probs[:, 1:]))
            k_now, v_now = keys + [mem.key], values + [mem.value]
            q = model.encode_query(pad(frames[i][None]))
            out = model.segment(q, torch.stack(k_now, 3), torch.stack(v_now, 3))
            probs = crop(out.probs)
            if (i - 1) % mem_every == 0:
                keys, values = k_now, v_now
            outs.append(probs[0])
    return outs


def test_matches_reference_stm_loop():
    frames, mask = _video(13)
    model = StandInModel().eval()
    core = InferenceCore(model, EngineConfig(mem_every=5, max_mem_frames=50))
    got = [core.step(frames[0], mask)] + [core.step(f) for f in frames[1:]]
    # one memory encoding per frame (all objects at once), none for the last frame
    assert model.memory_calls == [2] * 12
    ref = _naive(model, frames, mask)
    assert core.object_ids == [1, 3]
    for g, r in zip(got, ref):
        assert g.shape == (3, H, W)
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-6)
    # frame t reads {0, 5, ...} below t-1 plus t-1
    expected = [len({f for f in range(0, t - 1, 5)} | {t - 1}) for t in range(1, 13)]
    assert model.read_sizes[:12] == expected


def test_stm_model_matches_reference_loop_with_stm_padding():
    """A real network on 40x56 frames: the engine equals the loop that pads by hand to 48x64
    (4 rows/columns each side, zeros, masks empty outside the frame)."""
    from vosbench.models import build_model

    torch.manual_seed(0)
    model = build_model("stm-tiny").eval()
    frames, mask = _video(8)
    core = InferenceCore(model, EngineConfig(mem_every=5))
    got = [core.step(frames[0], mask)] + [core.step(f) for f in frames[1:]]
    ref = _naive(model, frames, mask, pads=(4, 4, 4, 4))
    for g, r in zip(got, ref):
        assert g.shape == (3, H, W)
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-5)


def test_first_frame_is_ground_truth_and_probs_sum_to_one():
    frames, mask = _video(3)
    core = InferenceCore(StandInModel())
    p0 = core.step(frames[0], mask)
    assert torch.equal(p0.argmax(0), torch.from_numpy(np.select([mask == 1, mask == 3], [1, 2], 0)))
    p1 = core.step(frames[1])
    torch.testing.assert_close(p1.sum(0), torch.ones(H, W))


def test_memory_cap_holds_on_long_video():
    frames, mask = _video(4)
    model = StandInModel()
    core = InferenceCore(model, EngineConfig(mem_every=2, max_mem_frames=4))
    core.step(frames[0], mask)
    for i in range(1, 25):
        core.step(frames[i % 4])
        assert core.memory.num_frames <= 4
        assert 0 in core.memory.frames
    assert max(model.read_sizes) == 4
    assert core.memory.keys.shape[3] == 4  # buffers never grow past the cap
    core.reset()
    assert core.memory.num_frames == 0 and core.object_ids == []


def test_late_object_joins_with_its_own_memory():
    frames, mask = _video(8)
    first = np.where(mask == 3, 0, mask).astype(np.uint8)
    model = StandInModel()
    core = InferenceCore(model, EngineConfig(mem_every=5))
    assert core.step(frames[0], first).shape == (2, H, W)
    core.step(frames[1])
    core.step(frames[2])
    late = np.where(mask == 3, 3, 0).astype(np.uint8)
    p3 = core.step(frames[3], late)  # object 3 joins; object 1 is still predicted
    assert core.object_ids == [1, 3]
    assert p3.shape == (3, H, W)
    assert torch.equal(p3[2] > 0.5, torch.from_numpy(mask == 3))
    assert p3[1][torch.from_numpy(mask == 3)].max() == 0  # ground truth wins over the prediction
    model.read_sizes.clear()
    p4 = core.step(frames[4])
    # object 1 reads frames {0, 3}, object 3 only {3} (it joined there)
    assert sorted(model.read_sizes) == [1, 2]
    torch.testing.assert_close(p4.sum(0), torch.ones(H, W))
    assert 3 in core.memory.frames and core.memory.slots[1].protected


def test_empty_first_mask_gives_background():
    frames, mask = _video(3)
    model = StandInModel()
    core = InferenceCore(model)
    out = [core.step(frames[0], np.zeros_like(mask))] + [core.step(f) for f in frames[1:]]
    assert all(o.shape == (1, H, W) and torch.all(o == 1) for o in out)
    assert model.read_sizes == [] and model.memory_calls == []


def test_spatial_prior_gets_previous_prediction():
    frames, mask = _video(4)
    model = StandInModel(spatial_prior=True)
    core = InferenceCore(model)
    core.step(frames[0], mask)
    for f in frames[1:]:
        assert core.step(f).shape == (3, H, W)  # the stand-in asserts prev_mask is given


def test_depth_model_needs_depth():
    frames, mask = _video(2)
    core = InferenceCore(StandInModel(depth=True))
    with pytest.raises(ConfigError, match="depth"):
        core.step(frames[0], mask)
    core.reset()
    d = torch.rand(H, W)
    core.step(frames[0], mask, depth=d)
    assert core.step(frames[1], depth=d).shape == (3, H, W)


def test_frame_size_change_is_refused():
    frames, mask = _video(1)
    core = InferenceCore(StandInModel())
    core.step(frames[0], mask)
    with pytest.raises(ValueError, match="started at"):
        core.step(torch.rand(3, H + 16, W))
