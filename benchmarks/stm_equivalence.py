"""Does ``vosbench convert`` + ``vosbench infer`` reproduce the official STM labels on real video?

The official code (seoungwugoh/STM, CC BY-NC-SA) is not part of vosbench: bring a checkout, e.g.
``git clone <the fetched mirror> /tmp/STM``, and pass it as ``--stm-dir``. The script

1. builds the official ``STM`` module (``model.py``) with random weights and randomised BatchNorm
   statistics and affines, wrapped in ``nn.DataParallel`` like the released weights, and saves its
   ``state_dict()`` (the released ``STM_weights.pth`` layout);
2. converts that file with ``vosbench convert --format stm``;
3. on every real clip (854x480 DAVIS frames, the first ``--max-frames`` of each; the first mask cut
   into ``--objects`` objects by columns of equal foreground area), runs the official evaluation
   loop (``Run_video`` of ``eval_DAVIS.py``, executed from the checkout: every 5th frame and the
   previous frame in memory, soft masks memorised, K = 11 slots as its DAVIS loader makes) and
   ``vosbench infer`` on a DAVIS-layout copy of the same frames and first mask;
4. prints the label agreement per clip over the propagated frames (frame 0 is the given mask in
   both): all pixels, and the foreground union (pixels either side labels as an object).

Runtime shims, applied here and nowhere in the checkout: ``torchvision.models.resnet50(pretrained=True)``
is replaced by an offline ``resnet50(weights=None)`` (the weights are random anyway), and
``cv2``/``matplotlib`` (imported but unused by ``model.py``) are stubbed when missing. The official
code runs on CPU as is (its ``ToCuda`` is a no-op without CUDA), in fp32.

    .venv/bin/python benchmarks/stm_equivalence.py --stm-dir /tmp/STM --data ../shared/data/real_vos \\
        --max-frames 13 --threads 2
    ... --clips blackswan,dog   # a subset

Cost: about 10 s per frame and implementation at 854x480 on 2 CPU threads.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

REPO = Path(__file__).resolve().parents[1]
STM_SLOTS = 11  # DAVIS_MO_Test's K: background + up to 10 objects


def load_official(stm_dir: Path):
    """-> (the official ``model`` module, ``Run_video`` from ``eval_DAVIS.py``), shimmed for CPU/offline."""
    for name in ("model.py", "helpers.py", "eval_DAVIS.py"):
        if not (stm_dir / name).is_file():
            sys.exit(f"error: {stm_dir} is not a checkout of seoungwugoh/STM (no {name})")
    for name in ("cv2", "matplotlib", "matplotlib.pyplot"):
        try:
            importlib.import_module(name)
        except ImportError:
            sys.modules[name] = types.ModuleType(name)
    import torchvision

    sys.path.insert(0, str(stm_dir))
    official = importlib.import_module("model")
    official.models = types.SimpleNamespace(resnet50=lambda pretrained=False: torchvision.models.resnet50(weights=None))
    # eval_DAVIS.py parses arguments and opens a dataset at import: take only Run_video from it
    tree = ast.parse((stm_dir / "eval_DAVIS.py").read_text())
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "Run_video")
    import tqdm

    namespace = {"np": np, "torch": torch, "F": torch.nn.functional, "tqdm": tqdm}
    exec(compile(ast.Module([fn], type_ignores=[]), str(stm_dir / "eval_DAVIS.py"), "exec"), namespace)
    return official, namespace


def random_official_model(official, seed: int) -> nn.Module:
    """The official module with random weights (torchvision init) and random BN statistics/affines."""
    torch.manual_seed(seed)
    net = official.STM()
    g = torch.Generator().manual_seed(seed + 1)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
    return nn.DataParallel(net).eval()


def calibrate_logits(model: nn.Module, image: torch.Tensor, mask: np.ndarray, target_std: float) -> float:
    """Scale ``Decoder.pred2`` so that its logit (channel 1 - channel 0) has std ``target_std`` when
    the first frame is segmented from its own memory; returns the factor.

    Randomly initialised, the decoder's logits are small (std 0.87 on car-shadow): every object's
    probability is near 0.5 everywhere, the K+1 soft-aggregated probabilities are nearly equal,
    and on many pixels the label is decided by differences at float32 rounding level (measured:
    the disagreeing pixels' top two official probabilities differ by <= 4e-7). A trained network
    is decisive; the scaled one is still random, but its labels carry information, which is what a
    label comparison needs. ``--logit-std 0`` keeps the plain random init.
    """
    net = model.module
    seen: list[torch.Tensor] = []
    hook = net.Decoder.pred2.register_forward_hook(lambda _m, _i, out: seen.append(out[:, 1] - out[:, 0]))
    n = int(mask.max())
    masks = torch.zeros(1, STM_SLOTS, *mask.shape)
    for k in range(STM_SLOTS):
        masks[0, k] = torch.from_numpy(mask == k)
    with torch.no_grad():
        keys, values = model(image, masks, torch.tensor([n]))
        model(image, keys, values, torch.tensor([n]))
    hook.remove()
    factor = target_std / float(seen[-1].std())
    net.Decoder.pred2.weight.data.mul_(factor)
    net.Decoder.pred2.bias.data.mul_(factor)
    return factor


def find_clips(root: Path) -> dict[str, Path]:
    """Clip name -> its DAVIS root (``<root>/<group>/<seq>/JPEGImages/480p/<seq>``)."""
    found = {}
    for frames in sorted(root.glob("*/*/JPEGImages/480p/*")):
        if frames.is_dir():
            found[frames.name] = frames.parents[2]
    return found


def cut_objects(mask: np.ndarray, n: int) -> np.ndarray:
    """A one-object mask cut into ``n`` objects by columns of equal foreground area (others kept)."""
    ids = [i for i in np.unique(mask) if i]
    if len(ids) != 1 or n < 2:
        return mask
    ys, xs = np.nonzero(mask)
    edges = np.quantile(xs, np.linspace(0, 1, n + 1)[1:-1])
    out = np.zeros_like(mask)
    out[ys, xs] = 1 + np.searchsorted(edges, xs, side="right")
    return out.astype(np.uint8)


def clip_data(clip_root: Path, name: str, max_frames: int, objects: int):
    frames = sorted((clip_root / "JPEGImages" / "480p" / name).glob("*.jpg"))[:max_frames]
    first = Image.open(clip_root / "Annotations" / "480p" / name / f"{frames[0].stem}.png")
    mask = cut_objects(np.array(first.convert("P")), objects)
    return frames, mask, first.getpalette()


def run_official(model, run_video, frames: list[Path], mask: np.ndarray) -> np.ndarray:
    """Labels T,H,W from the official loop (frames read as its DAVIS_MO_Test reads them)."""
    fs = np.stack([np.array(Image.open(f).convert("RGB")) / 255.0 for f in frames]).astype(np.float32)
    fs = torch.from_numpy(np.transpose(fs, (3, 0, 1, 2)).copy())[None]  # 1,3,T,H,W
    n = int(mask.max())
    ms = torch.zeros(1, STM_SLOTS, len(frames), *mask.shape)
    for k in range(STM_SLOTS):
        ms[0, k, 0] = torch.from_numpy(mask == k)
    run_video["model"] = model
    with torch.no_grad():
        pred, _ = run_video["Run_video"](fs, ms, len(frames), n, Mem_every=5, Mem_number=None)
    return pred


def write_davis_copy(root: Path, clips: dict[str, tuple[list[Path], np.ndarray, list[int]]]) -> None:
    for name, (frames, mask, palette) in clips.items():
        jpg = root / "JPEGImages" / "480p" / name
        ann = root / "Annotations" / "480p" / name
        jpg.mkdir(parents=True)
        ann.mkdir(parents=True)
        for f in frames:
            shutil.copyfile(f, jpg / f.name)
        img = Image.fromarray(mask, mode="P")
        img.putpalette(palette)
        img.save(ann / f"{frames[0].stem}.png")
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("".join(f"{n}\n" for n in clips))


def vosbench(*args: str, threads: int) -> None:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    cmd = [sys.executable, "-m", "vosbench_cli.main", *args]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"error: {' '.join(args[:1])} failed:\n{done.stderr.strip()}")


def agreement(ours: np.ndarray, theirs: np.ndarray) -> tuple[float, float, int]:
    """(all-pixel agreement, foreground-union agreement, foreground-union pixels) over frames 1.."""
    a, b = ours[1:], theirs[1:]
    same = a == b
    union = (a > 0) | (b > 0)
    fg = float(same[union].mean()) if union.any() else 1.0
    return float(same.mean()), fg, int(union.sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stm-dir", type=Path, required=True, help="checkout of seoungwugoh/STM")
    ap.add_argument("--data", type=Path, required=True, help="real clips: <data>/<group>/<seq>/JPEGImages/480p/<seq>")
    ap.add_argument("--clips", default="", help="comma-separated clip names (default: all found)")
    ap.add_argument("--max-frames", type=int, default=13, help="frames per clip (from the first)")
    ap.add_argument("--objects", type=int, default=3, help="objects cut from a one-object first mask")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--logit-std", type=float, default=4.0,
                    help="std of the random decoder's logit on a first frame (0 = leave the random init)")
    ap.add_argument("--json", type=Path, default=None, help="also write the table as JSON here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    official, run_video = load_official(args.stm_dir.resolve())
    available = find_clips(args.data)
    wanted = [c for c in args.clips.split(",") if c] or list(available)
    unknown = [c for c in wanted if c not in available]
    if unknown:
        sys.exit(f"error: no clip {unknown[0]!r} under {args.data} (found: {', '.join(available)})")
    clips = {c: clip_data(available[c], c, args.max_frames, args.objects) for c in wanted}

    model = random_official_model(official, args.seed)
    if args.logit_std > 0:
        frames0, mask0, _ = next(iter(clips.values()))
        half = (mask0.shape[0] // 2, mask0.shape[1] // 2)  # calibrating at half size is enough
        img = torch.from_numpy(np.array(Image.open(frames0[0]).convert("RGB").resize(half[::-1])) / 255.0)
        small = np.array(Image.fromarray(mask0).resize(half[::-1], Image.NEAREST))
        factor = calibrate_logits(model, img.permute(2, 0, 1)[None].float(), small, args.logit_std)
        print(f"decoder logits scaled by {factor:.3g} (std {args.logit_std} on {next(iter(clips))}'s first frame)")
    help_text = subprocess.run(
        [sys.executable, "-m", "vosbench_cli.main", "infer", "--help"], cwd=REPO, capture_output=True, text=True
    ).stdout
    precision = ["--precision", "fp32"] if "--precision" in help_text else []
    rows = []
    with tempfile.TemporaryDirectory(prefix="stm-equivalence-") as tmp:
        tmp_path = Path(tmp)
        weights = tmp_path / "STM_weights.pth"
        torch.save(model.state_dict(), weights)
        ckpt = tmp_path / "stm-r50.pt"
        vosbench("convert", str(weights), "--format", "stm", "--out", str(ckpt), threads=args.threads)
        write_davis_copy(tmp_path / "davis", clips)
        t0 = time.perf_counter()
        vosbench(
            "infer", "--checkpoint", str(ckpt), "--data", str(tmp_path / "davis"), "--split", "val",
            "--out", str(tmp_path / "out"), "--device", "cpu", *precision, threads=args.threads,
        )
        ours_s = time.perf_counter() - t0
        theirs_s = 0.0
        for name, (frames, mask, _) in clips.items():
            t0 = time.perf_counter()
            theirs = run_official(model, run_video, frames, mask)
            theirs_s += time.perf_counter() - t0
            ours = np.stack([np.array(Image.open(tmp_path / "out" / name / f"{f.stem}.png")) for f in frames])
            pix, fg, union = agreement(ours, theirs)
            rows.append({"clip": name, "frames": len(frames), "objects": int(mask.max()),
                         "pixels": pix, "foreground_union": fg, "union_pixels": union})
    print(f"| clip | frames | objects | all pixels | foreground union (pixels) |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['clip']} | {r['frames']} | {r['objects']} | {100 * r['pixels']:.3f} % "
              f"| {100 * r['foreground_union']:.3f} % ({r['union_pixels']}) |")
    ok = all(r["pixels"] >= 0.999 and r["foreground_union"] >= 0.99 for r in rows)
    total = sum(r["frames"] for r in rows)
    print(f"\nvosbench infer {ours_s:.0f} s, official loop {theirs_s:.0f} s for {total} frames "
          f"({args.threads} threads); goal (>= 99.9 % pixels, >= 99 % foreground union per clip): "
          f"{'met' if ok else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "goal_met": ok}, indent=2))


if __name__ == "__main__":
    main()
