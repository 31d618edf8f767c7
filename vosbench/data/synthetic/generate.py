"""Write the procedural dataset to disk in the DAVIS-2017 layout, with its manifest."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vosbench.data.davis import build_manifest, write_manifest
from vosbench.data.imageio import encode_mask_png, write_depth, write_frame
from vosbench.data.synthetic.profiles import SPLITS, SyntheticProfile, resolve_profile
from vosbench.data.synthetic.render import RenderedFrame, object_centre, render_frame
from vosbench.data.synthetic.scene import VideoSpec, sample_video_spec
from vosbench.data.synthetic.textures import TextureBank
from vosbench.errors import ConfigError, DataError
from vosbench.fsutil import atomic_dir, sweep_temps
from vosbench.progress import Progress, ensure_progress

RESOLUTION = "480p"
DATASET_NAME = "synthetic"
GENERATOR_VERSION = 1
MAX_ATTEMPTS = 60  # redraws of a scene until every annotated object is visible in frame 0


@dataclass(frozen=True)
class VideoPlan:
    """Which video to make: its name, split, length, whether it has look-alikes, and its seed."""

    name: str
    split: str
    index: int
    lookalike: bool
    seed: tuple[int, ...]


def plan_videos(profile: SyntheticProfile, seed: int) -> list[VideoPlan]:
    """The videos of a profile, in generation order. Exactly ``round(lookalike * n)`` videos of
    each split have look-alikes (chosen by a seeded permutation)."""
    plans = []
    for si, split in enumerate(SPLITS):
        n = profile.videos.get(split, 0)
        if n <= 0:
            continue
        n_la = int(round(profile.lookalike * n))
        chosen = set(np.random.default_rng([seed, si, 7919]).permutation(n)[:n_la].tolist())
        for i in range(n):
            plans.append(VideoPlan(name=f"{split}-{i:03d}", split=split, index=i, lookalike=i in chosen,
                                   seed=(seed, si, i)))
    return plans


def first_frame_ok(spec: VideoSpec, frame0: RenderedFrame) -> bool:
    """Every annotated object shows at least 60 % of its area (and a minimum of pixels) in frame 0."""
    min_px = max(12.0, 0.0015 * spec.height * spec.width)
    zoom = float(spec.cam_zoom[0])
    for i, obj in enumerate(spec.objects):
        if obj.obj_id == 0:
            continue
        full = spec.appearances[obj.appearance].unit_area * (obj.radius * float(obj.scale[0]) * zoom) ** 2
        if frame0.visible[i] < max(min_px, 0.6 * full):
            return False
    return True


def _spans(flags: np.ndarray) -> list[list[int]]:
    """Inclusive [start, end] runs of True."""
    spans, start = [], None
    for t, f in enumerate(flags.tolist()):
        if f and start is None:
            start = t
        elif not f and start is not None:
            spans.append([start, t - 1])
            start = None
    if start is not None:
        spans.append([start, len(flags) - 1])
    return spans


def _r(x: float, nd: int = 4) -> float:
    return round(float(x), nd)


def describe_video(spec: VideoSpec, in_frame: np.ndarray, visible: np.ndarray, annotate_all: bool) -> dict:
    """The generation parameters of one video, for the manifest (``in_frame``/``visible``: T,N)."""
    objects, distractors = [], []
    for i, obj in enumerate(spec.objects):
        app = spec.appearances[obj.appearance]
        out = in_frame[:, i] == 0
        occluded = (in_frame[:, i] > 0) & (visible[:, i] < 0.5 * in_frame[:, i])
        exits = _spans(out)
        entry = {
            "shape": app.shape,
            "texture": app.texture_source,
            "radius_px": _r(obj.radius, 2),
            "depth_range": [_r(obj.depth.min()), _r(obj.depth.max())],
            "exits": exits,
            "reentries": sum(1 for s in exits if s[1] < spec.n_frames - 1),
            "occlusions": _spans(occluded),
            "fully_occluded_frames": int(((in_frame[:, i] > 0) & (visible[:, i] == 0)).sum()),
        }
        if obj.obj_id > 0:
            objects.append({"id": obj.obj_id, "lookalike_group": obj.group} | entry)
        else:
            distractors.append({"looks_like": obj.looks_like} | entry)
    groups = []
    for ids in spec.groups:
        members = [o for o in spec.objects if o.obj_id in ids]
        dist = np.zeros(spec.n_frames)
        for t in range(spec.n_frames):
            cs = np.array([object_centre(spec, o, t) for o in members])
            dist[t] = max(np.hypot(*(a - b)) for j, a in enumerate(cs) for b in cs[j + 1:])
        cross = int(np.argmin(dist))
        groups.append({"ids": ids, "cross_frame": cross, "min_distance_px": _r(dist[cross], 2)})
    return {
        "lookalike": spec.lookalike,
        "lookalike_groups": groups,
        "objects": objects,
        "distractors": distractors,
        "annotated": "all" if annotate_all else "first",
        "background": spec.background_source,
        "camera": {
            "max_shift_px": _r(np.abs(spec.cam_shift).max(), 2),
            "zoom_range": [_r(spec.cam_zoom.min()), _r(spec.cam_zoom.max())],
        },
        "gain_range": [_r(spec.gain.min()), _r(spec.gain.max())],
        "blur_sigma": _r(spec.blur_sigma, 3),
        "noise_sigma": _r(spec.noise_sigma, 3),
        "jpeg_quality": spec.jpeg_quality,
    }


def make_video_spec(plan: VideoPlan, profile: SyntheticProfile, bank: TextureBank) -> VideoSpec:
    """Draw the scene of one planned video, redrawing until frame 0 shows every annotated object."""
    rng = np.random.default_rng(list(plan.seed) + [0])
    lo, hi = profile.frames
    n_frames = int(rng.integers(lo, hi + 1))
    for _ in range(MAX_ATTEMPTS):
        spec = sample_video_spec(rng, profile, bank, name=plan.name, split=plan.split, n_frames=n_frames,
                                 lookalike=plan.lookalike)
        if first_frame_ok(spec, render_frame(spec, 0, with_image=False)):
            return spec
    h, w = profile.size
    raise ConfigError(f"could not place {plan.name}'s objects visibly in a {h}x{w} frame; use a larger --size")


def write_video(root: Path, spec: VideoSpec, plan: VideoPlan) -> dict:
    """Render and write one video's frames, masks and depth maps; return its manifest entry."""
    noise_rng = np.random.default_rng(list(plan.seed) + [1])
    annotate_all = plan.split != "test-dev"
    img_dir = root / "JPEGImages" / RESOLUTION / spec.name
    ann_dir = root / "Annotations" / RESOLUTION / spec.name
    dep_dir = root / "Depth" / RESOLUTION / spec.name
    for d in (img_dir, ann_dir, dep_dir):
        d.mkdir(parents=True, exist_ok=True)
    n = spec.n_frames
    in_frame = np.zeros((n, len(spec.objects)), dtype=np.int64)
    visible = np.zeros_like(in_frame)
    for t in range(n):
        fr = render_frame(spec, t, noise_rng)
        in_frame[t], visible[t] = fr.in_frame, fr.visible
        stem = f"{t:05d}"
        write_frame(img_dir / f"{stem}.jpg", fr.image, quality=spec.jpeg_quality)
        if annotate_all or t == 0:
            # the whole dataset folder is renamed into place at the end, so a plain write suffices
            (ann_dir / f"{stem}.png").write_bytes(encode_mask_png(fr.labels))
        write_depth(dep_dir / f"{stem}.png", fr.depth, compress_level=3)
    return describe_video(spec, in_frame, visible, annotate_all)


def _check_root(root: Path) -> None:
    """Refuse to replace a non-empty folder that is not a synthetic dataset."""
    if not root.exists():
        return
    if not root.is_dir():
        raise DataError(f"{root}: exists and is not a folder")
    if not any(root.iterdir()):
        return
    manifest = root / "manifest.json"
    try:
        ours = json.loads(manifest.read_text()).get("dataset") == DATASET_NAME
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        raise DataError(f"{root}: folder is not empty and holds no synthetic dataset; choose a new or empty --root")


def generator_record(profile: SyntheticProfile, seed: int) -> dict:
    """What made a synthetic dataset (its manifest's ``generator``): same record, same bytes."""
    return {
        "version": GENERATOR_VERSION,
        "profile": profile.name,
        "seed": seed,
        "lookalike": profile.lookalike,
        "size": list(profile.size),
        "frames": list(profile.frames),
        "videos": {s: profile.videos.get(s, 0) for s in SPLITS},
    }


def check_synthetic_root(root: str | os.PathLike, profile: str | SyntheticProfile, seed: int) -> None:
    """A one-line DataError unless ``root`` holds the synthetic dataset ``profile``/``seed`` generate
    (its manifest's ``generator`` record), so a caller may reuse it instead of generating it."""
    root = Path(root)
    want = generator_record(resolve_profile(profile), seed)
    try:
        have = json.loads((root / "manifest.json").read_text(encoding="utf-8")).get("generator")
    except (OSError, ValueError, AttributeError):
        have = None
    if not isinstance(have, dict):
        raise DataError(f"{root}: holds no synthetic dataset made by vosbench (no generator record in its manifest.json); "
                        "choose another --out")
    diff = [k for k in want if have.get(k) != want[k]]
    if diff:
        names = {"profile": "--profile", "seed": "--seed"}
        made = ", ".join(f"{names.get(k, k)} {have.get(k)!r}" for k in diff)
        asked = ", ".join(f"{names.get(k, k)} {want[k]!r}" for k in diff)
        raise DataError(f"{root}: the dataset here was made with {made}, not the {asked} asked for; "
                        "choose another --out (or remove this dataset to make the new one)")


def generate_synthetic(
    root: str | os.PathLike,
    profile: str | SyntheticProfile = "small",
    seed: int = 0,
    lookalike: float | None = None,
    videos: int | None = None,
    frames: int | None = None,
    size: tuple[int, int] | str | None = None,
    progress: Progress | None = None,
) -> dict:
    """Generate the procedural DAVIS-layout dataset under ``root`` and return its manifest.

    The folder is built beside ``root`` and renamed into place only when complete; an existing
    synthetic dataset at ``root`` is replaced, any other non-empty folder is refused.
    Same ``seed`` and profile give the same bytes.
    """
    prof = resolve_profile(profile, lookalike=lookalike, videos=videos, frames=frames, size=size)
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"--seed must be a non-negative integer, got {seed!r}")
    root = Path(root)
    _check_root(root)
    sweep_temps(root.parent)  # the half-built folder of a run killed mid-way (built beside root)
    plans = plan_videos(prof, seed)
    prog = ensure_progress(progress)
    bank = TextureBank()
    try:
        with atomic_dir(root) as tmp:
            prog.start(f"generating {len(plans)} synthetic videos", total=len(plans))
            params = {}
            for plan in plans:
                spec = make_video_spec(plan, prof, bank)
                params[plan.name] = write_video(tmp, spec, plan)
                prog.advance(1)
            sets = tmp / "ImageSets" / "2017"
            sets.mkdir(parents=True, exist_ok=True)
            for split in SPLITS:
                names = [p.name for p in plans if p.split == split]
                if names:
                    (sets / f"{split}.txt").write_text("".join(f"{n}\n" for n in names))
            manifest = build_manifest(tmp, RESOLUTION, dataset=DATASET_NAME, extra={"generator": generator_record(prof, seed)})
            for name, p in params.items():
                manifest["sequences"][name]["synthetic"] = p
            write_manifest(tmp / "manifest.json", manifest)
    except OSError as exc:
        raise DataError(f"{root}: cannot write the dataset ({exc.strerror or exc})") from None
    return manifest


def summarise_manifest(manifest: dict) -> list[dict]:
    """One row per split of a synthetic manifest: videos, frames, objects and difficulty counts."""
    rows = []
    seqs = manifest.get("sequences", {})
    splits = manifest.get("splits", {})
    order = sorted(splits, key=lambda s: (SPLITS.index(s) if s in SPLITS else len(SPLITS), s))
    for split in order:
        names = splits[split]
        entries = [seqs[n] for n in names if n in seqs]
        syn = [e.get("synthetic", {}) for e in entries]
        sizes = sorted({f"{e['height']}x{e['width']}" for e in entries})
        frames = [e["frames"] for e in entries]
        rows.append({
            "split": split,
            "videos": len(entries),
            "frames": sum(frames),
            "length": f"{min(frames)}-{max(frames)}" if frames else "-",
            "size": ", ".join(sizes),
            "objects": sum(len(e["object_ids"]) for e in entries),
            "look-alike": sum(1 for s in syn if s.get("lookalike")),
            "distractors": sum(len(s.get("distractors", [])) for s in syn),
            "exits": sum(len(o.get("exits", [])) for s in syn for o in s.get("objects", [])),
            "masks": "first" if syn and all(s.get("annotated") == "first" for s in syn) else "all",
        })
    return rows
