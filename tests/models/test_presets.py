"""Every registered preset builds and trains one step at 64×64 with batch size 1 in train mode."""

import time

import pytest
import torch

from vosbench.losses import segmentation_loss
from vosbench.models import build_model, list_presets

from .conftest import make_inputs, run_model

TINY = [n for n in list_presets() if "tiny" in n]
# Full-size presets: STM and D-STM run by default; ResNeSt-101 and the other rungs are marked slow.
DEFAULT_BIG = {"stm-r50", "dstm-r50"}  # scm-r101 (ResNeSt-101) takes ~10 s: slow
BIG = [
    pytest.param(n, marks=() if n in DEFAULT_BIG else pytest.mark.slow)
    for n in list_presets()
    if "tiny" not in n
]


def _train_step(name: str) -> None:
    model = build_model(name)
    model.train()
    inputs = make_inputs(model, batch=1, objects=2, size=(64, 64))
    out = run_model(model, inputs)
    assert out.logits.shape == (1, 3, 64, 64)
    target = torch.zeros(1, 64, 64, dtype=torch.long)
    target[:, 10:30, 10:30] = 1
    target[:, 40:60, 35:60] = 2
    total, parts = segmentation_loss(out, target, model.config.loss)
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    expected_terms = {"ce"} | ({"lovasz"} if model.config.loss.lovasz else set())
    expected_terms |= {"iou"} if model.config.loss.iou else set()
    assert expected_terms <= set(parts)


def test_paper_presets_registered():
    names = set(list_presets())
    assert {"stm-r50", "scm-r101", "dstm-r50", "stm-tiny", "scm-tiny", "dstm-tiny"} <= names


@pytest.mark.parametrize("name", TINY)
def test_tiny_preset_batch1_train_step(name):
    _train_step(name)


@pytest.mark.parametrize("name", BIG)
def test_full_preset_batch1_train_step(name):
    start = time.perf_counter()
    _train_step(name)
    assert time.perf_counter() - start < 120


def test_preset_backbones_match_papers():
    assert build_model.__module__  # registry importable
    from vosbench.models import get_preset

    assert get_preset("stm-r50").backbone == "resnet50"
    scm = get_preset("scm-r101")
    assert (
        scm.backbone == "resnest101e" and scm.spatial_prior and scm.aspp and scm.refine and scm.loss.iou > 0
    )
    dstm = get_preset("dstm-r50")
    assert dstm.backbone == "resnest50d" and dstm.depth and dstm.aspp and dstm.loss.lovasz > 0
    assert not dstm.refine and not dstm.spatial_prior
    assert (get_preset("stm-r50").key_dim, get_preset("stm-r50").value_dim) == (128, 512)
