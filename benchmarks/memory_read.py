"""Peak memory, time and attention kernel of one space-time memory read (STM Eq. 1-3) at 480p.

``vosbench.models.memory.memory_read`` reads memory keys/values as ``B,K,N,C``. Before issue 25
it passed ``N,C`` *views* of the ``C,T,h,w`` memory bank (channel stride N) to
``scaled_dot_product_attention`` on CUDA (and on CPU when key and value widths are equal): every
fused kernel needs channel stride 1, so PyTorch fell back to its math kernel, which materialises
the ``L x N`` affinity of every object. The bank now stores ``T,h,w,C`` and hands out views that
flatten to ``N,C`` with stride 1. Rows (each in a fresh process on CPU, peak RSS above the inputs;
on CUDA, peak allocated above the inputs):

- ``sdpa, N,C views (before)``: SDPA on the old bank layout's views (the old CUDA call);
- ``sdpa, bank layout (after)``: the same call on the new bank layout;
- ``memory_read, bank layout``: the whole read as inference runs it now;
- ``memory_read, C,T,h,w input``: a contiguous ``C,T,h,w`` input (training's memory), copied once.

``kernel``: "fused" when SDPA runs with only the fused backends allowed (flash / memory-efficient /
cuDNN), "math" when it refuses to.

    .venv/bin/python benchmarks/memory_read.py [--device cpu|cuda] [--frames 20] [--objects 3] [--value-dim 512 128]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from vosbench.models.memory import memory_read

ROWS = ("sdpa-views", "sdpa-bank", "read-bank", "read-contiguous")
LABELS = {
    "sdpa-views": "sdpa, N,C views (before)",
    "sdpa-bank": "sdpa, bank layout (after)",
    "read-bank": "memory_read, bank layout",
    "read-contiguous": "memory_read, C,T,h,w input",
}
FUSED = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION]


def inputs(row: str, device: str, dtype: torch.dtype, t: int, k: int, ck: int, cv: int, h: int, w: int):
    """(query key B,Ck,h,w, memory key, memory value) in the layout ``row`` reads."""
    g = torch.Generator().manual_seed(0)

    def make(c: int) -> torch.Tensor:
        if row in ("sdpa-views", "read-contiguous"):  # the old bank / a model's output: C,T,h,w contiguous
            return torch.randn(1, k, c, t, h, w, generator=g).to(device, dtype)
        return torch.randn(1, k, t, h, w, c, generator=g).to(device, dtype).permute(0, 1, 5, 2, 3, 4)

    return torch.randn(1, ck, h, w, generator=g).to(device, dtype), make(ck), make(cv)


def run(row: str, qk: torch.Tensor, mk: torch.Tensor, mv: torch.Tensor) -> torch.Tensor:
    if row.startswith("read"):
        return memory_read(qk, mk, mv)
    b, ck, h, w = qk.shape
    q = qk.flatten(2).transpose(1, 2).contiguous().unsqueeze(1).expand(b, mk.shape[1], h * w, ck)
    return F.scaled_dot_product_attention(q, mk.flatten(3).transpose(2, 3), mv.flatten(3).transpose(2, 3))


def kernel(row: str, qk: torch.Tensor, mk: torch.Tensor, mv: torch.Tensor) -> str:
    try:
        with sdpa_kernel(FUSED):
            run(row, qk, mk, mv)
    except RuntimeError:
        return "math"
    return "fused"


def measure(row: str, device: str, dtype: torch.dtype, **shape: int) -> dict:
    qk, mk, mv = inputs(row, device, dtype, **shape)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    out = run(row, qk, mk, mv)
    if device == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    seconds = time.perf_counter() - t0
    del out
    return {"row": row, "peak_mib": peak / 2**20, "seconds": seconds, "kernel": kernel(row, qk, mk, mv)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), default=None, help="default: fp16 on CUDA, fp32 on CPU")
    ap.add_argument("--frames", type=int, default=20, help="memory frames T")
    ap.add_argument("--objects", type=int, default=3)
    ap.add_argument("--key-dim", type=int, default=128)
    ap.add_argument("--value-dim", type=int, nargs="+", default=[512, 128])
    ap.add_argument("--size", default="480x854", help="frame HxW (features at stride 16)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    dtype_name = args.dtype or ("fp16" if args.device == "cuda" else "fp32")
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype_name]
    fh, fw = (int(v) for v in args.size.split("x"))
    h, w = -(-fh // 16), -(-fw // 16)
    if args.child:
        row, cv = args.child.split(":")
        shape = dict(t=args.frames, k=args.objects, ck=args.key_dim, cv=int(cv), h=h, w=w)
        print(json.dumps(measure(row, args.device, dtype, **shape)))
        return
    print(f"one memory read at {fh}x{fw} (features {h}x{w}), {args.frames} memory frames, {args.objects} objects, "
          f"key width {args.key_dim}, {dtype_name} on {args.device}")
    print(f"{'value width':>11}  {'variant':<28} {'kernel':>6} {'peak MiB':>9} {'seconds':>8}")
    for cv in args.value_dim:
        for row in ROWS:
            cmd = [sys.executable, __file__, "--child", f"{row}:{cv}", "--device", args.device, "--dtype", dtype_name,
                   "--frames", str(args.frames), "--objects", str(args.objects), "--key-dim", str(args.key_dim),
                   "--size", args.size]
            res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
            print(f"{cv:>11}  {LABELS[row]:<28} {res['kernel']:>6} {res['peak_mib']:>9.0f} {res['seconds']:>8.3f}")


if __name__ == "__main__":
    main()
