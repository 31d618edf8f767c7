"""TTA: the identity variant is plain inference exactly; flip/scale variants map back correctly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vosbench.errors import ConfigError
from vosbench.infer.engine import EngineConfig, InferenceCore
from vosbench.infer.tta import TTAConfig, TTAInference, parse_scales

from .standin import StandInModel

H, W = 40, 56


def _video(n: int = 6):
    g = torch.Generator().manual_seed(1)
    frames = [torch.rand(3, H, W, generator=g) for _ in range(n)]
    mask = np.zeros((H, W), np.uint8)
    mask[4:20, 6:30] = 2
    mask[24:36, 30:50] = 5
    return frames, mask


def _run(predictor, frames, mask):
    return [predictor.step(frames[0], mask)] + [predictor.step(f) for f in frames[1:]]


def test_scale_one_without_flip_equals_plain_exactly():
    frames, mask = _video()
    model = StandInModel(spatial_prior=True)
    plain = _run(InferenceCore(model, EngineConfig(mem_every=2)), frames, mask)
    tta = _run(TTAInference(model, EngineConfig(mem_every=2), TTAConfig(scales=(1.0,))), frames, mask)
    assert all(torch.equal(a, b) for a, b in zip(plain, tta))


def test_flip_averages_plain_and_mirrored_runs():
    frames, mask = _video()
    model = StandInModel()
    fp32 = EngineConfig(precision="fp32")  # the variants' difference is below bf16's resolution
    got = _run(TTAInference(model, fp32, TTAConfig(flip=True)), frames, mask)
    plain = _run(InferenceCore(model, fp32), frames, mask)
    mirrored = _run(InferenceCore(model, fp32), [f.flip(-1) for f in frames], np.ascontiguousarray(mask[:, ::-1]))
    for g, p, m in zip(got, plain, mirrored):
        torch.testing.assert_close(g, (p + m.flip(-1)) / 2)
    assert not torch.allclose(plain[-1], mirrored[-1].flip(-1))  # the variants really differ


def test_scaled_variants_return_original_resolution_with_own_memory():
    frames, mask = _video()
    model = StandInModel()
    tta = TTAInference(model, EngineConfig(max_mem_frames=3), TTAConfig(flip=True, scales=(0.5, 1.0, 1.5)))
    assert len(tta.variants) == 6
    out = _run(tta, frames, mask)
    assert all(o.shape == (3, H, W) for o in out)
    torch.testing.assert_close(out[-1].sum(0), torch.ones(H, W))
    assert tta.object_ids == [2, 5]
    # first frame: exactly the given mask at the original resolution (not the resampled average)
    m = torch.from_numpy(mask).long()
    assert torch.equal(out[0], torch.stack([m == 0, m == 2, m == 5]).float())
    sizes = {tuple(c.state.size) for c in tta.cores}
    assert sizes == {(20, 28), (40, 56), (60, 84)}
    assert all(c.memory.num_frames <= 3 for c in tta.cores)
    tta.reset()
    assert all(c.memory.num_frames == 0 for c in tta.cores)


def test_parse_scales_and_validation():
    assert parse_scales("0.75, 1.0,1.25") == (0.75, 1.0, 1.25)
    with pytest.raises(ConfigError):
        parse_scales("0.75,big")
    with pytest.raises(ConfigError):
        TTAConfig(scales=(0.0,)).validate()
