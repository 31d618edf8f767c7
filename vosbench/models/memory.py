"""Space-time memory read (STM Eq. 1–3): softmax over all memory positions of k_Q·k_M / sqrt(Ck).

One query key per frame is shared by all K objects; each object has its own memory keys/values.
The default path is ``scaled_dot_product_attention`` over a (B, K) batch of heads with the query
key expanded (not copied) across objects: one call on CUDA (memory-efficient kernel), and on CPU one
call per key-width group of value channels so that the fused flash kernel applies (it needs equal
key/value widths); fp16/bf16 under autocast. ``chunk_size`` instead processes
memory in blocks of positions with an online (running max / running sum) softmax, which never holds
more than ``L × chunk_size`` affinities per object and gives the same result whatever the chunking.

Layout: attention reads keys and values as ``B,K,N,C`` (N = T·h·w memory positions) and its fused
kernels (CUDA memory-efficient / flash, CPU flash) need the channel dimension contiguous (stride
1); given ``N,C`` *views* of a ``C,T,h,w`` tensor, whose channel stride is N, SDPA silently falls
back to its math kernel, which materialises the whole ``L×N`` affinity per object (one read at
480p, 20 memory frames, 3 objects, fp32 on CPU: SDPA on such views peaks at 1368 MiB, this read of
the bank at 26 MiB; benchmarks/memory_read.py). The inference memory bank
(vosbench.infer.memory) therefore stores ``T,h,w,C`` (channels last) and hands out ``C,T,h,w`` views
of it, which flatten to ``N,C`` with stride 1 at no cost; other inputs are copied into that layout
(keys whole, values one key-width group at a time on the CPU path).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _common_dtype(*tensors: torch.Tensor) -> torch.dtype:
    device_type = tensors[0].device.type
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def memory_read(
    query_key: torch.Tensor,
    memory_key: torch.Tensor,
    memory_value: torch.Tensor,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Read memory for every object.

    ``query_key`` B,Ck,h,w; ``memory_key`` B,K,Ck,T,hm,wm; ``memory_value`` B,K,Cv,T,hm,wm
    -> B,K,Cv,h,w (the normalised sum of memory values weighted by exp(k_Q·k_M / sqrt(Ck))).
    """
    b, ck, h, w = query_key.shape
    if memory_key.dim() != 6 or memory_value.dim() != 6:
        raise ValueError("memory key/value must be B,K,C,T,h,w")
    k_obj, cv = memory_key.shape[1], memory_value.shape[2]
    if memory_key.shape[0] != b or memory_key.shape[2] != ck:
        raise ValueError(
            f"memory key {tuple(memory_key.shape)} does not match query key {tuple(query_key.shape)}"
        )
    dtype = _common_dtype(query_key, memory_key, memory_value)
    q = query_key.flatten(2).transpose(1, 2).to(dtype).contiguous()  # B,L,Ck (small; fused kernels need it)
    q = q.unsqueeze(1).expand(b, k_obj, h * w, ck)  # B,K,L,Ck (shared across objects, no copy)
    k = channels_minor(memory_key.flatten(3).transpose(2, 3).to(dtype))  # B,K,N,Ck, channel stride 1
    v = memory_value.flatten(3).transpose(2, 3).to(dtype)  # B,K,N,Cv (channel stride 1 from the bank)
    if chunk_size is not None and chunk_size < k.shape[2]:
        out = _chunked_attention(q, k, v, chunk_size)
    elif q.device.type == "cuda" or cv == ck:
        out = F.scaled_dot_product_attention(q, k, channels_minor(v))  # B,K,L,Cv ; scale 1/sqrt(Ck)
    else:
        out = _grouped_value_attention(q, k, v)
    return out.transpose(2, 3).reshape(b, k_obj, cv, h, w)


def channels_minor(t: torch.Tensor) -> torch.Tensor:
    """``t`` with its last (channel) dimension at stride 1: itself when it is, else one copy."""
    return t if t.stride(-1) == 1 else t.contiguous()


def _grouped_value_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """SDPA with the value channels split into key-width groups.

    PyTorch's fused CPU kernel (flash attention) needs equal key and value widths and channel
    stride 1; otherwise SDPA falls back to materialising the full L×N affinity per object. Splitting
    Cv into Cv/Ck groups recomputes q·k per group but never holds the affinity matrix.
    """
    ck, cv = q.shape[-1], v.shape[-1]
    outs = []
    for start in range(0, cv, ck):
        vg = channels_minor(v[..., start : start + ck])  # a copy only of a group, when v is not channels-last
        width = vg.shape[-1]
        if width < ck:
            vg = F.pad(vg, (0, ck - width))
        outs.append(F.scaled_dot_product_attention(q, k, vg)[..., :width])
    return torch.cat(outs, dim=-1)


def _chunked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """Exact softmax attention over memory blocks with a running max and sum (>= float32 accumulators)."""
    scale = 1.0 / math.sqrt(q.shape[-1])
    out_dtype = q.dtype
    acc_dtype = torch.promote_types(q.dtype, torch.float32)
    running_max = torch.full((*q.shape[:-1], 1), -math.inf, device=q.device, dtype=acc_dtype)
    running_sum = torch.zeros_like(running_max)
    acc = torch.zeros((*q.shape[:-1], v.shape[-1]), device=q.device, dtype=acc_dtype)
    for start in range(0, k.shape[2], chunk_size):
        kc = k[:, :, start : start + chunk_size]
        vc = v[:, :, start : start + chunk_size]
        scores = torch.matmul(q, kc.transpose(-1, -2)).to(acc_dtype) * scale  # B,K,L,c
        new_max = torch.maximum(running_max, scores.amax(dim=-1, keepdim=True))
        correction = torch.exp(running_max - new_max)
        weights = torch.exp(scores - new_max)
        running_sum = running_sum * correction + weights.sum(dim=-1, keepdim=True)
        acc = acc * correction + torch.matmul(weights.to(vc.dtype), vc).to(acc_dtype)
        running_max = new_max
    return (acc / running_sum).to(out_dtype)


def naive_memory_read(
    query_key: torch.Tensor, memory_key: torch.Tensor, memory_value: torch.Tensor
) -> torch.Tensor:
    """Reference: the original STM formulation, one object at a time with an explicit affinity matrix."""
    b, ck, h, w = query_key.shape
    outs = []
    for obj in range(memory_key.shape[1]):
        mk = memory_key[:, obj].flatten(2)  # B,Ck,N
        mv = memory_value[:, obj].flatten(2)  # B,Cv,N
        qk = query_key.flatten(2)  # B,Ck,L
        affinity = torch.bmm(mk.transpose(1, 2), qk) / math.sqrt(ck)  # B,N,L
        affinity = torch.softmax(affinity, dim=1)
        outs.append(torch.bmm(mv, affinity).view(b, -1, h, w))  # B,Cv,h,w
    return torch.stack(outs, dim=1)


class MemoryReader(nn.Module):
    """Memory read followed by concatenation with the query value: -> B,K,2Cv,h,w."""

    def __init__(self, chunk_size: int | None = None):
        super().__init__()
        self.chunk_size = chunk_size

    def forward(
        self,
        query_key: torch.Tensor,
        query_value: torch.Tensor,
        memory_key: torch.Tensor,
        memory_value: torch.Tensor,
    ) -> torch.Tensor:
        read = memory_read(query_key, memory_key, memory_value, self.chunk_size)  # B,K,Cv,h,w
        qv = query_value.unsqueeze(1).expand(-1, read.shape[1], -1, -1, -1).to(read.dtype)
        return torch.cat([qv, read], dim=2)
