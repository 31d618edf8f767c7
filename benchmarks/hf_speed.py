"""Speed and memory of an ``hf:`` (SAM 2) member against the direct transformers loop.

1. **Speed** — frames/s on 854x480 frames for the same saved SAM 2 model run two ways: the
   adapter (:class:`vosbench.infer.hf_video.SamVideoCore`: per-frame processing, the model's
   forward on the session, ``post_process_masks``, logits -> K+1 probabilities, argmax) and the
   direct transformers loop (``init_video_session(video=...)``, mask prompts on frame 0,
   ``propagate_in_video_iterator``, ``post_process_masks``, SAM 2's lowest-id label rule). Each
   is timed ``--repeats`` times, alternating, and the fastest run of each is kept (the machine
   may be shared). The first frame (the prompt) is included in both.
2. **Memory** — peak RSS (CPU) or peak CUDA memory of each way on a ``--long``-frame video, each in
   a fresh process, and the MiB of tensors its inference session holds at the end: the direct loop
   keeps every frame and every frame's outputs; the adapter drops what SAM 2 can no longer read
   (docs/model-api.md), so its session stays flat with the length.

The model is a random-init SAM 2 saved with ``save_pretrained``: the tiny one of
``vosbench.infer.hf_tiny`` (``--image-size`` is its input), or with ``--sam2-tiny-architecture``
transformers' default ``Sam2VideoConfig`` (Hiera-T, 1024 input: the architecture and compute of
``facebook/sam2.1-hiera-tiny``, 39M parameters), or any ``--model FOLDER``. Only timings and
memory are compared (the masks of a random model are meaningless). Times are process CPU time
and wall time; on a shared machine the CPU time is the steadier.

    .venv/bin/python benchmarks/hf_speed.py [--image-size 256] [--frames 12] [--objects 2] [--threads 2]
    .venv/bin/python benchmarks/hf_speed.py --skip-speed --long 300      # memory only

Measured 2026-12-08 on the shared 2-core CPU machine (other jobs running; wall times unreliable):
``--sam2-tiny-architecture --frames 6 --repeats 2 --threads 1``: direct 12.277, adapter 12.324 CPU
s/frame (+0.4 %), labels identical; ``--image-size 1024 --skip-speed --long 40`` / ``--long 80``:
session tensors 920 / 1780 MiB (direct) vs 221.5 / 221.5 MiB (adapter).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

H, W = 480, 854


def make_video(n: int, objects: int, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """Random uint8 frames ``H,W,3`` (smoothed, so they are not pure noise) and a first mask of rectangles."""
    g = np.random.default_rng(seed)
    base = g.integers(0, 255, (-(-H // 8), -(-W // 8), 3)).astype(np.uint8)
    frames = []
    for t in range(n):
        small = np.roll(base, t, axis=1)
        frames.append(np.ascontiguousarray(small.repeat(8, 0).repeat(8, 1)[:H, :W]))
    mask = np.zeros((H, W), np.uint8)
    for k in range(objects):
        y, x = (H // (objects + 1)) * (k + 1) - H // 8, (W // (objects + 1)) * (k + 1) - W // 10
        mask[max(y, 0) : y + H // 4, max(x, 0) : x + W // 5] = k + 1
    return frames, mask


def state_mib(session) -> float:
    """MiB of the tensors an inference session holds (frames, per-frame outputs, prompts, cache)."""
    seen: set[int] = set()

    def size(x) -> int:
        if isinstance(x, torch.Tensor):
            if x.data_ptr() in seen:
                return 0
            seen.add(x.data_ptr())
            return x.numel() * x.element_size()
        if isinstance(x, dict):
            return sum(size(v) for v in x.values())
        if isinstance(x, (list, tuple)):
            return sum(size(v) for v in x)
        return 0

    parts = (session.processed_frames or {}, session.output_dict_per_obj, session.mask_inputs_per_obj,
             session.point_inputs_per_obj, session.cache._vision_features)
    return sum(size(p) for p in parts) / 2**20


def run_direct(folder: str, frames: list[np.ndarray], mask: np.ndarray, device: str, report: dict | None = None):
    """The transformers loop as documented, with SAM 2's tools/vos_inference.py label rule."""
    import transformers as tf

    model = tf.Sam2VideoModel.from_pretrained(folder).eval().to(device)
    proc = tf.Sam2VideoProcessor.from_pretrained(folder)
    ids = [int(i) for i in np.unique(mask) if i]
    labels = []
    with torch.inference_mode():
        session = proc.init_video_session(video=frames, inference_device=device, dtype=torch.float32)
        proc.add_inputs_to_inference_session(session, frame_idx=0, obj_ids=ids, input_masks=[mask == i for i in ids])
        for out in model.propagate_in_video_iterator(session, start_frame_idx=0):
            logits = proc.post_process_masks([out.pred_masks], original_sizes=[[H, W]], binarize=False)[0][:, 0]
            lab = torch.zeros((H, W), dtype=torch.uint8, device=logits.device)
            for k in reversed(range(len(out.object_ids))):
                lab[logits[k] > 0] = out.object_ids[k]
            labels.append(lab.cpu().numpy())
    if report is not None:
        report["state_mib"] = state_mib(session)
    return labels


def run_adapter(folder: str, frames: list[np.ndarray], mask: np.ndarray, device: str, report: dict | None = None):
    from vosbench.infer.hf_video import HFVideoModel
    from vosbench.infer.probs import labels_of

    hf = HFVideoModel(f"hf:{folder}", device, "fp32")
    core = hf.video_core(None, len(frames))
    labels = []
    for t, f in enumerate(frames):
        image = torch.from_numpy(f).to(device).permute(2, 0, 1).float().div_(255)
        probs = core.step(image, mask if t == 0 else None)
        labels.append(labels_of(probs, core.object_ids))  # as `vosbench infer` writes them
    if report is not None:
        report["state_mib"] = state_mib(core.session)
    return labels


def _peak(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args: argparse.Namespace) -> None:
    """One run in this process: print seconds and peak memory as JSON."""
    torch.set_num_threads(args.threads)
    frames, mask = make_video(args.long, args.objects)
    fn = run_adapter if args.child == "adapter" else run_direct
    t0 = time.perf_counter()
    row: dict = {}
    fn(args.model, frames, mask, args.device, row)
    print(json.dumps({"seconds": time.perf_counter() - t0, "peak_mb": _peak(args.device), **row}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="a SAM 2 save_pretrained folder (default: a random tiny one)")
    ap.add_argument("--image-size", type=int, default=256, help="input size of the random model (1024 = SAM 2's)")
    ap.add_argument("--sam2-tiny-architecture", action="store_true",
                    help="random weights in transformers' default Sam2VideoConfig (Hiera-T at 1024)")
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--objects", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--long", type=int, default=0, help="frames of the memory run (0: skip)")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--child", choices=["adapter", "direct"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        if args.model is None and args.sam2_tiny_architecture:
            import transformers as tf

            torch.manual_seed(0)
            tf.Sam2VideoModel(tf.Sam2VideoConfig()).save_pretrained(Path(tmp) / "sam2")
            tf.Sam2VideoProcessor(image_processor=tf.Sam2ImageProcessor(),
                                  video_processor=tf.Sam2VideoVideoProcessor()).save_pretrained(Path(tmp) / "sam2")
            args.model, args.image_size = str(Path(tmp) / "sam2"), 1024
        elif args.model is None:
            from vosbench.infer.hf_tiny import write_tiny_tracker

            args.model = str(write_tiny_tracker(Path(tmp) / "sam2", image_size=args.image_size))
        print(f"model {args.model} (input {args.image_size}), {args.objects} objects, 854x480, "
              f"device {args.device}, {args.threads} threads")
        if not args.skip_speed:
            frames, mask = make_video(args.frames, args.objects)
            best = {"direct": float("inf"), "adapter": float("inf")}
            cpu = dict(best)
            agree = None
            for _ in range(args.repeats):
                for name, fn in (("direct", run_direct), ("adapter", run_adapter)):
                    t0, c0 = time.perf_counter(), time.process_time()
                    labels = fn(args.model, frames, mask, args.device)
                    best[name] = min(best[name], time.perf_counter() - t0)
                    cpu[name] = min(cpu[name], time.process_time() - c0)
                    if name == "direct":
                        ref = labels
                    else:
                        agree = np.mean([np.mean(a == b) for a, b in zip(labels[1:], ref[1:])])
            print("| way | frames/s (wall) | s/frame (wall) | CPU s/frame |\n|---|---|---|---|")
            for name in ("direct", "adapter"):
                print(f"| {name} | {args.frames / best[name]:.2f} | {best[name] / args.frames:.3f} | "
                      f"{cpu[name] / args.frames:.3f} |")
            print(f"adapter overhead: wall {100 * (best['adapter'] / best['direct'] - 1):+.1f} %, "
                  f"CPU {100 * (cpu['adapter'] / cpu['direct'] - 1):+.1f} %; "
                  f"labels agree on {100 * agree:.2f} % of the propagated pixels (random weights: near-ties differ)")
        if args.long:
            print(f"\n| way | {args.long} frames: seconds | peak {'CUDA' if args.device.startswith('cuda') else 'RSS'} MiB "
                  "| session tensors at the end, MiB |")
            print("|---|---|---|---|")
            for name in ("direct", "adapter"):
                cmd = [sys.executable, __file__, "--child", name, "--model", args.model, "--long", str(args.long),
                       "--objects", str(args.objects), "--threads", str(args.threads), "--device", args.device]
                res = subprocess.run(cmd, capture_output=True, text=True)
                if res.returncode:
                    print(f"| {name} | failed: {res.stderr.strip().splitlines()[-1]} | | |")
                    continue
                row = json.loads(res.stdout.strip().splitlines()[-1])
                print(f"| {name} | {row['seconds']:.1f} | {row['peak_mb']:.0f} | {row['state_mib']:.1f} |")


if __name__ == "__main__":
    main()
