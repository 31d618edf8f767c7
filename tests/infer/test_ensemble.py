"""EnsembleInference: one member passes through exactly; several are a weighted average."""

from __future__ import annotations

import numpy as np
import torch

from vosbench.infer.engine import InferenceCore
from vosbench.infer.ensemble import EnsembleInference
from vosbench.infer.tta import TTAInference

from .standin import StandInModel

H, W = 32, 48


def _video(n: int = 4):
    g = torch.Generator().manual_seed(2)
    mask = np.zeros((H, W), np.uint8)
    mask[4:20, 6:30] = 1
    mask[22:30, 30:44] = 2
    return [torch.rand(3, H, W, generator=g) for _ in range(n)], mask


def _run(predictor, frames, mask, depth=None):
    return [predictor.step(frames[0], mask, depth=depth)] + [predictor.step(f, depth=depth) for f in frames[1:]]


def test_single_member_is_exact_and_weights_average():
    frames, mask = _video()
    a, b = StandInModel(seed=0), StandInModel(seed=1, spatial_prior=True)
    plain_a = _run(InferenceCore(a), frames, mask)
    plain_b = _run(InferenceCore(b), frames, mask)
    one = _run(EnsembleInference([TTAInference(a)], [1.0]), frames, mask)
    assert all(torch.equal(x, y) for x, y in zip(one, plain_a))
    both = _run(EnsembleInference([TTAInference(a), TTAInference(b)], [0.25, 0.75]), frames, mask)
    for got, pa, pb in zip(both, plain_a, plain_b):
        torch.testing.assert_close(got, 0.25 * pa + 0.75 * pb)
    assert not torch.allclose(plain_a[-1], plain_b[-1])


def test_depth_goes_only_to_members_that_take_it():
    frames, mask = _video(3)
    rgb, dep = StandInModel(seed=0), StandInModel(seed=1, depth=True)
    d = torch.rand(H, W)
    ens = EnsembleInference([TTAInference(rgb), TTAInference(dep)], [0.5, 0.5])
    out = _run(ens, frames, mask, depth=[None, d])
    assert out[-1].shape == (3, H, W)
    torch.testing.assert_close(out[-1].sum(0), torch.ones(H, W))
