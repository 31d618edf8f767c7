"""BatchNorm folding and weight casting for the reduced-precision inference path."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from vosbench.infer.engine import EngineConfig, inference_model
from vosbench.models import build_model
from vosbench.models.backbone import FrozenStatsBatchNorm2d
from vosbench.models.fold import cast_weights, fold_backbones, fold_batchnorm


class ConvBN(nn.Module):
    def __init__(self, bn: nn.Module, bias: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1, bias=bias)
        self.bn = bn

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


def _hand_made(bn_cls=nn.BatchNorm2d, bias: bool = False) -> ConvBN:
    m = ConvBN(bn_cls(2), bias)
    with torch.no_grad():
        m.conv.weight[:] = torch.tensor([2.0, -1.0]).view(2, 1, 1, 1)
        if bias:
            m.conv.bias[:] = torch.tensor([1.0, 0.0])
        m.bn.running_mean[:] = torch.tensor([1.0, -2.0])
        m.bn.running_var[:] = torch.tensor([4.0, 1.0])
        m.bn.weight[:] = torch.tensor([3.0, 0.5])
        m.bn.bias[:] = torch.tensor([0.5, 1.0])
        m.bn.eps = 0.0
    return m.eval()


@pytest.mark.parametrize("bn_cls", [nn.BatchNorm2d, FrozenStatsBatchNorm2d])
def test_folded_conv_has_the_hand_computed_weights(bn_cls) -> None:
    m = _hand_made(bn_cls, bias=True)
    assert fold_batchnorm(m) == 1
    assert isinstance(m.bn, nn.Identity)
    # channel 0: 3 * (2x + 1 - 1) / 2 + 0.5 = 3x + 0.5 ; channel 1: 0.5 * (-x + 2) / 1 + 1 = -0.5x + 2
    torch.testing.assert_close(m.conv.weight.flatten(), torch.tensor([3.0, -0.5]))
    torch.testing.assert_close(m.conv.bias, torch.tensor([0.5, 2.0]))
    x = torch.tensor([[[[1.0]]], [[[-4.0]]]])  # 2,1,1,1
    torch.testing.assert_close(m(x).flatten(), torch.tensor([3.5, 1.5, 0.0, 4.0]))


class SharedConv(nn.Module):
    """The convolution's output is read by the BN and by a skip: folding would change the skip."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1)
        self.bn = nn.BatchNorm2d(2)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y


def test_a_convolution_read_elsewhere_is_not_folded() -> None:
    m = SharedConv().eval()
    m.bn.running_mean.fill_(3.0)
    x = torch.randn(2, 1, 4, 4)
    before = m(x)
    assert fold_batchnorm(m) == 0
    assert isinstance(m.bn, nn.BatchNorm2d)
    torch.testing.assert_close(m(x), before)


def test_training_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="eval"):
        fold_batchnorm(_hand_made().train())


@pytest.mark.parametrize("preset", ["stm-tiny", "dstm-tiny"])
def test_folded_backbones_compute_the_same_features(preset) -> None:
    torch.manual_seed(0)
    model = build_model(preset).eval()
    for mod in model.modules():  # non-trivial statistics, so a wrong fold shows
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            mod.running_mean.uniform_(-1, 1)
            mod.running_var.uniform_(0.5, 2.0)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.5, 0.5)
    n_bn = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    folded = copy.deepcopy(model)
    assert fold_backbones(folded) == n_bn > 0  # every BN of the trunks follows a convolution
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    x = torch.rand(1, 3, 64, 96)
    depth = torch.rand(1, 1, 64, 96) if model.config.depth else None
    with torch.no_grad():
        a, b = model.encode_query(x, depth=depth), folded.encode_query(x, depth=depth)
    torch.testing.assert_close(b.key, a.key, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(b.value, a.value, rtol=1e-4, atol=1e-5)


def test_cast_weights_keeps_buffers_float32() -> None:
    model = cast_weights(build_model("stm-tiny").eval(), torch.bfloat16)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(c.weight.dtype == torch.bfloat16 for c in convs)
    assert all(b.dtype != torch.bfloat16 for b in model.buffers())


def test_inference_model_fp32_is_the_model_and_bf16_a_folded_copy() -> None:
    model = build_model("stm-tiny").eval()
    assert inference_model(model, EngineConfig(precision="fp32")) is model
    fast = inference_model(model, EngineConfig(precision="bf16"))
    assert fast is not model
    assert any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())  # original untouched
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in fast.modules())
    assert next(model.parameters()).dtype == torch.float32
