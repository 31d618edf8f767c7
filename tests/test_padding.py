"""The one padding rule (STM's): centred, floor half before, zeros on the [0, 1] input."""

from __future__ import annotations

import pytest
import torch

from vosbench.padding import pad_to_stride, split_padding, stride_padding, unpad


def test_split_and_stride_padding_hand_computed():
    assert split_padding(0) == (0, 0)
    assert split_padding(3) == (1, 2)  # the odd row goes after
    assert split_padding(10) == (5, 5)
    # DAVIS 480p: 854 wide -> 864 (5 + 5 columns), 480 rows already a multiple of 16
    assert stride_padding(480, 854) == (5, 5, 0, 0)
    assert stride_padding(5, 7, 4) == (0, 1, 1, 2)  # (left, right, top, bottom)
    with pytest.raises(ValueError):
        split_padding(-1)


def test_pad_to_stride_small_case():
    x = torch.arange(1, 36, dtype=torch.float32).view(1, 1, 5, 7)  # H=5, W=7, multiple 4 -> 8x8
    expected = torch.zeros(1, 1, 8, 8)
    expected[0, 0, 1:6, 0:7] = x[0, 0]  # 1 row above, 2 below, 0 columns left, 1 right
    got = pad_to_stride(x, 4)
    assert torch.equal(got, expected)
    assert torch.equal(unpad(got, (5, 7), 4), x)
    assert pad_to_stride(torch.ones(1, 1, 8, 8), 4).shape == (1, 1, 8, 8)
    with pytest.raises(ValueError):
        unpad(got, (9, 7), 4)  # 9 rows pad to 12, not 8
