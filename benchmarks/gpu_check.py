"""The first thing to run on a GPU machine: does every CUDA path of vosbench work, and how fast is it?

One table, one row per check, and exit status 1 when any check fails (a row that cannot run on
this machine, e.g. fp16 on a CPU without native fp16, is "skip", not a failure):

- ``train``: one training step (``vosbench train --max-steps 1`` in-process, random init) of every
  preset in fp32, bf16 and fp16: the loss is finite and a checkpoint is written;
- ``infer``: stm-r50, scm-r101 and dstm-r50 at 854x480 with 3 objects, in fp32, bf16 and fp16:
  frames/s (after the first frame), peak GPU memory, and the share of pixels whose label agrees
  with fp32 (the model is first fitted in fp32 to frame 0 by online finetuning, since a random
  network's outputs are near ties); a reduced precision fails below 97 % agreement;
- ``sdpa``: the memory read at 480p (bank layout, the inference dtype) with only the fused
  attention kernels allowed (flash / memory-efficient / cuDNN): it fails when PyTorch would fall
  back to the math kernel; on CUDA the kernel names come from the profiler;
- ``ddp``: a 2-process DDP training step under torchrun (NCCL on 2 GPUs, else gloo on the CPU);
- ``resume``: that run resumed by one process on this device (a changed GPU count);
- ``tests``: the ``gpu``-marked tests (pytest -m gpu), on CUDA.

Budget: under 8 minutes on one H100. ``--quick`` (tiny presets, 64x96 frames, 4 frames) with
``--device cpu`` is the CPU smoke test CI runs (tests/test_gpu_check.py).

    .venv/bin/python benchmarks/gpu_check.py                     # on the GPU machine
    .venv/bin/python benchmarks/gpu_check.py --device cpu --quick --skip ddp,resume
    .venv/bin/python benchmarks/gpu_check.py --only infer,sdpa --json gpu-check.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
SECTIONS = ("train", "infer", "sdpa", "ddp", "resume", "tests")
PRECISIONS = ("fp32", "bf16", "fp16")
INFER_PRESETS = ("stm-r50", "scm-r101", "dstm-r50")
QUICK_INFER_PRESETS = ("stm-tiny", "scm-tiny", "dstm-tiny")
MIN_AGREEMENT = 0.97


@dataclass
class Row:
    section: str
    name: str
    status: str  # ok | FAIL | skip
    detail: str = ""
    seconds: float = 0.0


class Checks:
    """Runs checks, records one :class:`Row` each (an exception is a FAIL with its last line)."""

    def __init__(self) -> None:
        self.rows: list[Row] = []

    def run(self, section: str, name: str, fn: Callable[[], tuple[str, str]]) -> None:
        t0 = time.perf_counter()
        try:
            status, detail = fn()
        except Skip as exc:
            status, detail = "skip", str(exc)
        except Exception as exc:  # noqa: BLE001 - a failed check is a row of the table, not the end of the run
            status = "FAIL"
            detail = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            traceback.print_exc(file=sys.stderr)
        row = Row(section, name, status, detail, time.perf_counter() - t0)
        self.rows.append(row)
        print(f"[{row.status:>4}] {section:<7}{name:<26}{row.seconds:>7.1f} s  {detail}", file=sys.stderr, flush=True)

    def table(self) -> str:
        head = f"{'check':<8}{'case':<28}{'result':<8}{'seconds':>8}  detail"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            lines.append(f"{r.section:<8}{r.name:<28}{r.status:<8}{r.seconds:>8.1f}  {r.detail}")
        failed = sum(r.status == "FAIL" for r in self.rows)
        lines.append(f"{len(self.rows)} checks: {sum(r.status == 'ok' for r in self.rows)} ok, {failed} failed, "
                     f"{sum(r.status == 'skip' for r in self.rows)} skipped")
        return "\n".join(lines)


class Skip(Exception):
    """The check cannot run on this machine (not a failure)."""


def numerics_or_skip(device: str, precision: str, purpose: str):
    from vosbench.errors import ConfigError
    from vosbench.precision import resolve_numerics

    try:
        return resolve_numerics(device, precision, purpose)  # type: ignore[arg-type]
    except ConfigError as exc:
        raise Skip(str(exc)) from None


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------- training


def family_config(preset: str) -> Path:
    family = preset.split("-")[0]
    return REPO / "configs" / f"{family}-tiny.toml"


def train_overrides(preset: str, data: Path, precision: str, quick: bool) -> list[str]:
    items = [f'model.preset="{preset}"', f'data.root="{data}"', "data.split=train", "data.workers=0",
             "train.batch_size=2", f'train.precision="{precision}"', "train.save_every=100000",
             "train.log_every=1", "data.samples_per_epoch=64", "train.epochs=1"]
    if not preset.endswith("-tiny") and "-tiny-" not in preset:
        items += ["model.overrides={}"]  # the preset as registered (the tiny configs shrink its trunk)
        if not quick:  # a realistic crop (the papers: 384x384)
            items += ["data.crop=[384, 384]", "data.short_side=[400, 440]"]
    return items


def check_train_step(preset: str, precision: str, device: str, data: Path, tmp: Path, quick: bool) -> tuple[str, str]:
    numerics_or_skip(device, precision, "train")
    from vosbench.train.run import train_from_config

    out = tmp / f"train-{preset}-{precision}"
    result = train_from_config(family_config(preset), data=data, out=out, max_steps=1, device=device,
                               overrides=train_overrides(preset, data, precision, quick), allow_random_init=True)
    if result.step != 1 or not math.isfinite(result.final_loss) or not result.last_checkpoint.is_file():
        return "FAIL", f"step {result.step}, loss {result.final_loss}, checkpoint {result.last_checkpoint}"
    return "ok", f"loss {result.final_loss:.3f} on {result.device} {result.precision}"


# --------------------------------------------------------------------------- inference


def synthetic_clip(n: int, h: int, w: int, objects: int = 3, seed: int = 0):
    """``n`` frames (3,H,W float in [0,1]) of ``objects`` moving ellipses over a texture, frame 0's
    mask (ids 1..objects) and a depth map per frame (H,W in [0,1])."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    texture = rng.random((h // 8 + 1, w // 8 + 1, 3)).repeat(8, 0).repeat(8, 1)[:h, :w] * 0.4
    colours = rng.random((objects, 3)) * 0.6 + 0.4
    centres = np.stack([rng.uniform(0.25, 0.75, objects) * h, rng.uniform(0.2, 0.8, objects) * w], 1)
    speed = rng.uniform(-1, 1, (objects, 2)) * np.array([h, w]) / (4 * max(n, 1))
    frames, depths, first = [], [], None
    for t in range(n):
        img = texture.copy()
        depth = (yy / h * 0.5).copy()
        mask = np.zeros((h, w), np.uint8)
        for k in range(objects):
            cy, cx = centres[k] + speed[k] * t
            inside = ((yy - cy) / (0.15 * h)) ** 2 + ((xx - cx) / (0.1 * w)) ** 2 <= 1
            img[inside] = colours[k]
            depth[inside] = 0.6 + 0.1 * k
            mask[inside] = k + 1
        frames.append(torch.from_numpy(img.transpose(2, 0, 1).astype(np.float32)))
        depths.append(torch.from_numpy(depth))
        if t == 0:
            first = mask
    return frames, first, depths


def fitted_model(preset: str, device: torch.device, clip, steps: int) -> torch.nn.Module:
    """``preset`` (random init) fitted in fp32 to frame 0 of ``clip`` by online finetuning."""
    from vosbench.infer.finetune import FinetuneConfig, finetune_model
    from vosbench.models import build_model

    frames, mask, depths = clip
    torch.manual_seed(0)
    model = build_model(preset).eval().to(device)
    image = (frames[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    depth = depths[0].numpy() if getattr(model.config, "depth", False) else None
    ids = [int(i) for i in np.unique(mask) if i]
    return finetune_model(model, image, mask, ids, FinetuneConfig(steps=steps, lr=1e-3, precision="fp32"), depth)


def run_engine(model: torch.nn.Module, numerics, clip) -> tuple[list[np.ndarray], float, float | None]:
    """(labels per frame, frames/s after frame 0, peak GPU MiB) of ``model`` at ``numerics``."""
    from vosbench.infer.engine import EngineConfig, InferenceCore, inference_model, prepare_model
    from vosbench.precision import apply_backend_policy

    frames, mask, depths = clip
    apply_backend_policy(numerics)
    engine = EngineConfig(precision=numerics.precision, numerics=numerics)
    net = inference_model(prepare_model(model, numerics.device, engine), engine)
    dev = numerics.device
    depth_model = bool(getattr(model.config, "depth", False))
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
    core = InferenceCore(net, engine)
    labels, t0 = [], 0.0
    for i, frame in enumerate(frames):
        if i == 1:
            sync(dev)
            t0 = time.perf_counter()
        d = depths[i].to(dev) if depth_model else None
        probs = core.step(frame.to(dev), mask if i == 0 else None, depth=d)
        labels.append(probs.argmax(0).to(torch.uint8).cpu().numpy())
    sync(dev)
    fps = (len(frames) - 1) / (time.perf_counter() - t0) if len(frames) > 1 else 0.0
    peak = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None
    return labels, fps, peak


def check_inference(checks: Checks, preset: str, device: str, size: tuple[int, int], n: int, fit_steps: int) -> None:
    from vosbench.precision import resolve_device

    dev = resolve_device(device)
    state: dict = {}

    def fit() -> tuple[str, str]:
        state["clip"] = synthetic_clip(n, *size)
        state["model"] = fitted_model(preset, dev, state["clip"], fit_steps)
        return "ok", f"{fit_steps} fp32 finetuning steps on frame 0 ({size[1]}x{size[0]}, 3 objects)"

    checks.run("infer", f"{preset} fit", fit)
    if "model" not in state:
        return
    for precision in PRECISIONS:
        def one(precision: str = precision) -> tuple[str, str]:
            numerics = numerics_or_skip(str(dev), precision, "infer")
            labels, fps, peak = run_engine(state["model"], numerics, state["clip"])
            if precision == "fp32":
                state["reference"] = labels
            reference = state.get("reference")
            agree = None
            if reference is not None:
                agree = float(np.mean([np.mean(a == b) for a, b in zip(labels[1:], reference[1:])]))
            memory = f", peak {peak:.0f} MiB" if peak is not None else ""
            text = f"{fps:.1f} frames/s{memory}" + (f", labels {100 * agree:.2f} % = fp32" if agree is not None else "")
            if agree is not None and agree < MIN_AGREEMENT:
                return "FAIL", text + f" (< {100 * MIN_AGREEMENT:.0f} %)"
            return "ok", text

        checks.run("infer", f"{preset} {precision}", one)


# --------------------------------------------------------------------------- attention kernel


def check_sdpa(device: str, quick: bool) -> tuple[str, str]:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from vosbench.infer.memory import MemoryBank
    from vosbench.models.memory import memory_read
    from vosbench.precision import resolve_numerics

    numerics = resolve_numerics(device, "auto", "infer")
    dev, dtype = numerics.device, numerics.dtype
    h, w, t, k = (4, 6, 3, 2) if quick else (30, 54, 10, 3)  # 480p at stride 16, 10 memory frames
    bank = MemoryBank(capacity=t + 1, dtype=dtype)
    for i in range(t):
        bank.add(torch.randn(1, k, 128, h, w, device=dev), torch.randn(1, k, 512, h, w, device=dev), i, permanent=True)
    mk, mv = bank.read()
    qk = torch.randn(1, 128, h, w, device=dev, dtype=dtype)
    fused = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION]
    try:
        with sdpa_kernel(fused):
            memory_read(qk, mk, mv)
    except RuntimeError as exc:
        return "FAIL", f"no fused kernel takes the memory read (math fallback): {str(exc).splitlines()[0]}"
    names = ""
    if dev.type == "cuda":
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            memory_read(qk, mk, mv)
            sync(dev)
        kernels = {e.key for e in prof.key_averages()}
        hits = sorted(n for n in kernels if any(s in n.lower() for s in ("fmha", "flash", "attention", "cutlass")))
        names = "; kernels: " + (", ".join(x[:60] for x in hits[:3]) or ", ".join(sorted(kernels))[:120])
    return "ok", f"fused ({dtype}, {t} memory frames x {h}x{w}, {k} objects){names}"


# --------------------------------------------------------------------------- DDP and resume


def cli_env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")


def run_cli(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=cli_env(), capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        tail = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()][-1:] or ["(no output)"]
        raise RuntimeError(f"exit {proc.returncode}: {tail[0][:180]}")
    return proc


def ddp_args(preset: str, data: Path, out: Path, quick: bool) -> list[str]:
    args = ["--config", str(family_config(preset)), "--data", str(data), "--out", str(out), "--allow-random-init"]
    for item in train_overrides(preset, data, "auto", quick):
        if not item.startswith("train.precision"):
            args += ["--set", item]
    return args


def check_ddp(preset: str, ddp_device: str, data: Path, out: Path, quick: bool) -> tuple[str, str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m",
           "vosbench_cli.launch", *ddp_args(preset, data, out, quick), "--max-steps", "2", "--device", ddp_device]
    run_cli(cmd, timeout=300)
    return "ok", f"2 processes on {ddp_device} ({'nccl' if ddp_device == 'cuda' else 'gloo'}), 2 steps of {preset}"


def check_resume(preset: str, device: str, data: Path, out: Path, quick: bool) -> tuple[str, str]:
    if not (out / "last.pt").is_file():
        raise Skip("no DDP run to resume (the ddp check did not run or failed)")
    cmd = [sys.executable, "-m", "vosbench_cli.main", "train", *ddp_args(preset, data, out, quick), "--resume",
           "--max-steps", "3", "--device", device]
    run_cli(cmd, timeout=300)
    import csv

    with open(out / "log.csv", newline="") as fh:
        steps = [int(r["step"]) for r in csv.DictReader(fh)]
    if not steps or steps[-1] != 3:
        return "FAIL", f"log.csv ends at step {steps[-1] if steps else None}, expected 3"
    return "ok", f"2-process run resumed by 1 process on {device} to step 3"


def check_gpu_tests(device: str) -> tuple[str, str]:
    if not device.startswith("cuda"):
        raise Skip("the gpu-marked tests need CUDA")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", "tests"],
                          cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=300, check=False)
    last = [ln for ln in proc.stdout.splitlines() if ln.strip()][-1:] or ["(no output)"]
    return ("ok" if proc.returncode == 0 else "FAIL"), last[0][:200]


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda or cuda:N")
    ap.add_argument("--quick", action="store_true", help="tiny presets, 64x96 frames, 4 frames: the CPU smoke test")
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections ({', '.join(SECTIONS)})")
    ap.add_argument("--skip", default="", help="comma-separated sections to leave out")
    ap.add_argument("--presets", default=None, help="training presets (default: every preset; --quick: the tiny ones)")
    ap.add_argument("--infer-presets", default=None,
                    help=f"inference presets (default {','.join(INFER_PRESETS)}; --quick: the tiny ones)")
    ap.add_argument("--frames", type=int, default=None, help="inference frames per clip (default 16; --quick 4)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    args = ap.parse_args(argv)

    from vosbench.data.synthetic.generate import generate_synthetic
    from vosbench.models.registry import list_presets
    from vosbench.precision import device_name, resolve_device

    sections = [s for s in args.only.split(",") if s and s not in args.skip.split(",")]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        ap.error(f"unknown section(s): {', '.join(unknown)}")
    device = str(resolve_device(args.device))
    print(f"gpu_check on {device_name(torch.device(device))}, torch {torch.__version__} "
          f"(CUDA {torch.version.cuda}), sections: {', '.join(sections)}", file=sys.stderr, flush=True)
    tiny = [p for p in list_presets() if "tiny" in p]
    presets = args.presets.split(",") if args.presets else (tiny if args.quick else list_presets())
    size = (64, 96) if args.quick else (480, 854)
    n = args.frames or (4 if args.quick else 16)
    checks = Checks()
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as td:
        tmp = Path(td)
        data = tmp / "data"
        if {"train", "ddp", "resume"} & set(sections):
            with contextlib.redirect_stdout(sys.stderr):
                generate_synthetic(data, "tiny", seed=0, videos=4, size=(120, 216) if args.quick else (240, 432))
        if "train" in sections:
            for preset in presets:
                for precision in PRECISIONS:
                    checks.run("train", f"{preset} {precision}",
                               lambda p=preset, q=precision: check_train_step(p, q, device, data, tmp, args.quick))
        if "infer" in sections:
            infer_presets = args.infer_presets.split(",") if args.infer_presets else (
                QUICK_INFER_PRESETS if args.quick else INFER_PRESETS)
            for preset in infer_presets:
                check_inference(checks, preset, device, size, n, fit_steps=3 if args.quick else 20)
        if "sdpa" in sections:
            checks.run("sdpa", "memory read", lambda: check_sdpa(device, args.quick))
        ddp_preset = "stm-tiny" if args.quick else "stm-r50"
        ddp_device = "cuda" if device.startswith("cuda") and torch.cuda.device_count() >= 2 else "cpu"
        ddp_out = tmp / "ddp"
        if "ddp" in sections:
            checks.run("ddp", f"{ddp_preset} x2", lambda: check_ddp(ddp_preset, ddp_device, data, ddp_out, args.quick))
        if "resume" in sections:
            checks.run("resume", f"{ddp_preset} 2 -> 1", lambda: check_resume(ddp_preset, device, data, ddp_out, args.quick))
        if "tests" in sections:
            checks.run("tests", "pytest -m gpu", lambda: check_gpu_tests(device))
    print(checks.table())
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in checks.rows], indent=2) + "\n")
    return 1 if any(r.status == "FAIL" for r in checks.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
