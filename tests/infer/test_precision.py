"""Inference precision: fp32 runs no autocast region; bf16 agrees with fp32 on a fixed clip and keeps
its memory in bf16 and its outputs in float32."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vosbench.infer import InferOptions, infer_dataset
from vosbench.infer.engine import EngineConfig, InferenceCore, inference_model
from vosbench.infer.finetune import FinetuneConfig, finetune_model
from vosbench.models import build_model
from vosbench.precision import resolve_numerics

from ..autocast_spy import autocast_spy

H, W = 48, 64
needs_bf16 = pytest.mark.skipif(resolve_numerics("cpu", "auto").precision != "bf16",
                                reason="this CPU has no native bf16 in PyTorch's report")


def _clip(n: int = 6) -> tuple[list[torch.Tensor], np.ndarray]:
    """Two coloured rectangles moving over a gradient, and frame 0's mask (ids 1, 2)."""
    frames = []
    for t in range(n):
        img = torch.zeros(3, H, W) + torch.linspace(0, 0.5, W)
        img[0, 8 + t : 26 + t, 6 + 2 * t : 28 + 2 * t] = 0.9
        img[2, 28:44, 36 - 2 * t : 58 - 2 * t] = 0.8
        frames.append(img.clamp(0, 1))
    mask = np.zeros((H, W), np.uint8)
    mask[8:26, 6:28] = 1
    mask[28:44, 36:58] = 2
    return frames, mask


@pytest.fixture(scope="module")
def fitted() -> torch.nn.Module:
    """stm-tiny fitted in fp32 to the clip's first frame (a random-init model's outputs are near ties,
    so label agreement would only measure rounding noise)."""
    torch.manual_seed(0)
    frames, mask = _clip()
    image = (frames[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    return finetune_model(build_model("stm-tiny").eval(), image, mask, [1, 2],
                          FinetuneConfig(steps=30, lr=1e-3, precision="fp32"))


def _run(model: torch.nn.Module, precision: str) -> tuple[list[torch.Tensor], InferenceCore]:
    frames, mask = _clip()
    core = InferenceCore(model, EngineConfig(precision=precision))
    return [core.step(frames[0], mask)] + [core.step(f) for f in frames[1:]], core


@needs_bf16
@pytest.mark.parametrize("engine_path", [False, True], ids=["autocast", "folded-bf16-weights"])
def test_bf16_labels_agree_with_fp32_on_a_fixed_clip(fitted, engine_path) -> None:
    ref, _ = _run(fitted, "fp32")
    # engine_path: the network `vosbench infer` runs at bf16 (BN folded, weights stored in bf16)
    model = inference_model(fitted, EngineConfig(precision="bf16")) if engine_path else fitted
    got, _ = _run(model, "bf16")
    labels = [p.argmax(0) for p in ref[1:]]
    for lab in labels:  # the fitted model tracks both objects, so agreement is not "all background"
        assert (lab == 1).sum() > 100 and (lab == 2).sum() > 100
    agreement = [(a == b.argmax(0)).float().mean().item() for a, b in zip(labels, got[1:])]
    assert min(agreement) >= 0.97 and np.mean(agreement) >= 0.98, agreement


@needs_bf16
def test_bf16_memory_is_bf16_and_outputs_are_float32(fitted) -> None:
    probs, core = _run(fitted, "bf16")
    assert core.memory.keys.dtype == torch.bfloat16 and core.memory.values.dtype == torch.bfloat16
    for p in probs:
        assert p.dtype == torch.float32
        torch.testing.assert_close(p.sum(0), torch.ones(H, W), rtol=0, atol=1e-5)
    ref, core32 = _run(fitted, "fp32")
    assert core32.memory.keys.dtype == torch.float32


@pytest.mark.parametrize("preset", ["stm-tiny", "scm-tiny"])
def test_fp32_run_enters_no_autocast_region(preset, make_davis_root, tiny_checkpoint, tmp_path) -> None:
    data = make_davis_root({"a": (3, 2)}, size=(32, 48))
    options = InferOptions(precision="fp32", flip=True, finetune_steps=1)  # TTA and finetuning too
    with autocast_spy() as seen:
        summary = infer_dataset(str(tiny_checkpoint(preset)), data, out=tmp_path / "fp32", options=options)
    assert summary.precision == "fp32" and summary.device == "cpu"
    assert seen["calls"] > 0 and seen["entered"] == 0 and seen["calls_in_autocast"] == 0, seen
    if resolve_numerics("cpu", "auto").precision == "bf16":  # the spy does see a bf16 run's regions
        with autocast_spy() as seen:
            summary = infer_dataset(str(tiny_checkpoint(preset)), data, out=tmp_path / "auto",
                                    options=InferOptions(finetune_steps=1))
        assert summary.precision == "bf16" and seen["entered"] > 0 and seen["calls_in_autocast"] > 0
