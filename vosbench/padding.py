"""Padding to a size: the one rule shared by inference, online finetuning and training crops.

STM's rule (its evaluation code pads every frame this way): the frame is padded *centred*, the
floor half of the missing rows/columns before it and the rest after it, with zeros on the [0, 1]
image before normalisation (so the padded area is black to the network) and zeros on every mask
(nothing outside the frame is an object). ``VOSModel`` pads its inputs to a multiple of
:data:`STRIDE` with :func:`pad_to_stride` and crops its outputs back with :func:`unpad`; training
crops larger than the frame place the frame with :func:`split_padding` too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported lazily: the numpy augmentations use split_padding only
    from torch import Tensor

STRIDE = 16  # output stride of the STM family's encoders
Pads = tuple[int, int, int, int]  # (left, right, top, bottom), the order torch.nn.functional.pad takes


def split_padding(total: int) -> tuple[int, int]:
    """``total`` rows (or columns) of padding -> (before, after): floor half before, the rest after."""
    if total < 0:
        raise ValueError(f"padding must be >= 0, got {total}")
    return total // 2, total - total // 2


def stride_padding(h: int, w: int, multiple: int = STRIDE) -> Pads:
    """(left, right, top, bottom) padding that makes ``h, w`` multiples of ``multiple``, centred."""
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    left, right = split_padding((-w) % multiple)
    top, bottom = split_padding((-h) % multiple)
    return left, right, top, bottom


def pad_to_stride(x: Tensor, multiple: int = STRIDE) -> Tensor:
    """Zero-pad the last two dims of ``x`` (…,H,W) centred up to multiples of ``multiple``."""
    import torch.nn.functional as F

    pads = stride_padding(int(x.shape[-2]), int(x.shape[-1]), multiple)
    return F.pad(x, pads) if any(pads) else x


def unpad(x: Tensor, size: tuple[int, int], multiple: int = STRIDE) -> Tensor:
    """The ``size`` = (H, W) frame inside ``x`` (…,Hp,Wp) padded by :func:`pad_to_stride`."""
    h, w = size
    left, _, top, _ = stride_padding(h, w, multiple)
    if x.shape[-2:] != (h + (-h) % multiple, w + (-w) % multiple):
        raise ValueError(f"{tuple(x.shape[-2:])} is not {size} padded to a multiple of {multiple}")
    return x[..., top : top + h, left : left + w]
