"""The procedural dataset: layout, determinism, depth/occlusion consistency, look-alikes, CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from vosbench_cli.main import app
from vosbench.data.davis import DavisDataset
from vosbench.data.imageio import encode_mask_png, has_davis_palette, read_frame, read_mask
from vosbench.data.synthetic import generate as gen
from vosbench.data.synthetic import generate_synthetic, plan_videos, resolve_profile
from vosbench.data.synthetic.baselines import mean_j, swap_ids, write_baseline
from vosbench.data.synthetic.render import footprint, object_matrix, render_frame
from vosbench.data.synthetic.textures import TextureBank
from vosbench.errors import ConfigError, DataError

runner = CliRunner()
SPLITS = ("train", "val", "test-dev")


def manifest_of(root: Path) -> dict:
    return json.loads((root / "manifest.json").read_text())


def all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- layout and files


def test_layout_is_valid_davis(tiny_synthetic_root):
    root = tiny_synthetic_root
    m = manifest_of(root)
    assert m["dataset"] == "synthetic" and m["generator"]["profile"] == "tiny"
    assert set(m["splits"]) == set(SPLITS)
    for split in SPLITS:
        ds = DavisDataset(root, split)
        assert ds.validate(full=True) == []
        for seq in ds:
            assert seq.size == (96, 160) and 3 <= seq.num_frames <= 10
            assert seq.has_depth and len(list(seq.depth_dir.glob("*.png"))) == seq.num_frames
            expected = 1 if split == "test-dev" else seq.num_frames
            assert len(seq.annotation_paths) == expected
            assert m["sequences"][seq.name]["synthetic"]["annotated"] == ("first" if split == "test-dev" else "all")


def test_palette_and_dtypes(tiny_synthetic_root):
    seq = DavisDataset(tiny_synthetic_root, "val").sequence("val-000")
    ann = seq.annotation_paths[seq.frame_names[3]]
    assert has_davis_palette(ann)
    with Image.open(ann) as img:
        assert img.mode == "P"
    with Image.open(seq.depth_path(3)) as img:
        assert np.asarray(img).dtype == np.uint16
    d = seq.depth(3)
    assert d.dtype == np.float32 and 0.0 <= d.min() and d.max() <= 1.0
    frame = seq.frame(3)
    assert frame.dtype == np.uint8 and frame.shape == (96, 160, 3)
    with Image.open(seq.frame_paths[0]) as img:
        assert img.format == "JPEG"


def test_every_annotated_object_visible_in_first_frame(tiny_synthetic_root):
    m = manifest_of(tiny_synthetic_root)
    for split in SPLITS:
        for seq in DavisDataset(tiny_synthetic_root, split):
            listed = [o["id"] for o in m["sequences"][seq.name]["synthetic"]["objects"]]
            first = seq.first_mask()
            assert seq.object_ids == listed == list(range(1, len(listed) + 1))
            for oid in listed:
                assert (first == oid).sum() >= 12, (seq.name, oid)


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    kw = dict(videos=3, frames=4, size="48x80")
    generate_synthetic(tmp_path / "a", "tiny", seed=3, **kw)
    generate_synthetic(tmp_path / "b", "tiny", seed=3, **kw)
    generate_synthetic(tmp_path / "c", "tiny", seed=4, **kw)
    a, b, c = all_files(tmp_path / "a"), all_files(tmp_path / "b"), all_files(tmp_path / "c")
    assert a == b
    assert len(a) > 3 * 4 * 2
    assert set(a) == set(c) and any(a[k] != c[k] for k in a if k.endswith(".jpg"))


def test_lookalike_share_controls_groups(tmp_path):
    kw = dict(videos=4, frames=4, size="64x96")
    every = generate_synthetic(tmp_path / "all", "tiny", seed=1, lookalike=1.0, **kw)
    none = generate_synthetic(tmp_path / "none", "tiny", seed=1, lookalike=0.0, **kw)
    for name, entry in every["sequences"].items():
        syn = entry["synthetic"]
        assert syn["lookalike"] and len(syn["lookalike_groups"]) == 1
        assert len(entry["object_ids"]) >= 2
    assert not any(e["synthetic"]["lookalike"] or e["synthetic"]["lookalike_groups"] for e in none["sequences"].values())


# --------------------------------------------------------------------------- scene consistency


def _specs(root: Path):
    """Re-draw the scene of every video of the tiny root (same seed, same profile)."""
    m = manifest_of(root)
    g = m["generator"]
    prof = resolve_profile("tiny")
    bank = TextureBank()
    for plan in plan_videos(prof, g["seed"]):
        yield plan, gen.make_video_spec(plan, prof, bank)


def test_depth_ordering_consistent_with_occlusion(tiny_synthetic_root):
    overlaps = 0
    for plan, spec in _specs(tiny_synthetic_root):
        seq = DavisDataset(tiny_synthetic_root, plan.split).sequence(plan.name)
        h, w = spec.height, spec.width
        for t in range(spec.n_frames):
            fr = render_frame(spec, t, with_image=False)
            if seq.has_mask(t):  # the files hold what the scene renders
                assert np.array_equal(seq.mask(t), fr.labels)
            depth = seq.depth(t)
            full = []
            for obj in spec.objects:
                fp = footprint(spec.appearances[obj.appearance].polygon, object_matrix(spec, obj, t), h, w)
                m = np.zeros((h, w), bool)
                if fp is not None:
                    y0, x0, reg = fp
                    m[y0:y0 + reg.shape[0], x0:x0 + reg.shape[1]] = reg
                full.append(m)
            for i, a in enumerate(spec.objects):
                for j, b in enumerate(spec.objects):
                    if j <= i:
                        continue
                    both = full[i] & full[j]
                    if both.sum() < 5:
                        continue
                    overlaps += 1
                    near, far = (i, j) if a.depth[t] < b.depth[t] else (j, i)
                    front = fr.instance[both]
                    assert not np.any(front == far)  # the farther object never shows in the overlap
                    d_far = spec.objects[far].depth[t]
                    assert np.all(depth[both] < d_far - 1e-4)  # the depth map shows something nearer
                    only_near = both & (fr.instance == near)
                    assert np.allclose(depth[only_near], spec.objects[near].depth[t], atol=2e-5)
        # objects are nearer than the background everywhere
        bg = fr.instance == -1
        assert depth[bg].min() >= 0.6 - 1e-4 and (depth[~bg].max() if (~bg).any() else 0) <= 0.56 + 1e-4
    assert overlaps > 0  # the tiny dataset has overlapping objects to check


def _chroma(frame: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Mean chromaticity (r, g, b summing to 1) of a region's eroded core."""
    core = cv2.erode(region.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    rgb = frame[core].mean(axis=0)
    return rgb / rgb.sum()


def test_lookalikes_share_appearance(tiny_synthetic_root):
    m = manifest_of(tiny_synthetic_root)
    groups_seen = distractors_seen = 0
    for plan, spec in _specs(tiny_synthetic_root):
        syn = m["sequences"][plan.name]["synthetic"]
        assert syn["lookalike"] == plan.lookalike == bool(spec.groups)
        listed = [g["ids"] for g in syn["lookalike_groups"]]
        assert listed == spec.groups
        seq = DavisDataset(tiny_synthetic_root, plan.split).sequence(plan.name)
        frame = seq.frame(0).astype(np.float64)
        instance = render_frame(spec, 0, with_image=False).instance
        # colour statistics of the members' visible pixels in the written frame 0 agree
        # (chromaticity; brightness differs a little with the light gradient)
        for ids in spec.groups:
            groups_seen += 1
            members = [o for o in spec.objects if o.obj_id in ids]
            assert len({o.appearance for o in members}) == 1  # one shape + texture
            entries = [o for o in syn["objects"] if o["id"] in ids]
            assert len({(e["shape"], e["texture"], e["radius_px"]) for e in entries}) == 1
            assert 0 <= min(g["cross_frame"] for g in syn["lookalike_groups"]) < seq.num_frames
            first = seq.first_mask()
            chroma = [_chroma(frame, first == oid) for oid in ids]
            for c in chroma[1:]:
                assert np.abs(chroma[0] - c).max() < 0.03
        # unannotated distractors copy an annotated object's look
        for k, obj in enumerate(spec.objects):
            if obj.obj_id != 0:
                continue
            src = next(o for o in spec.objects if o.obj_id == obj.looks_like)
            assert obj.appearance == src.appearance and obj.radius == src.radius
            region = instance == k
            src_region = instance == spec.objects.index(src)
            if region.sum() >= 30 and src_region.sum() >= 30:
                distractors_seen += 1
                assert np.abs(_chroma(frame, region) - _chroma(frame, src_region)).max() < 0.03
        for d in syn["distractors"]:
            assert d["looks_like"] in [o["id"] for o in syn["objects"]]
    assert groups_seen >= 1 and distractors_seen >= 1


def test_different_objects_differ_in_colour(tiny_synthetic_root):
    """The look-alike check above can fail: objects of different appearance are told apart by it."""
    differ = 0
    for plan, spec in _specs(tiny_synthetic_root):
        seq = DavisDataset(tiny_synthetic_root, plan.split).sequence(plan.name)
        frame, first = seq.frame(0).astype(np.float64), seq.first_mask()
        ann = spec.annotated
        for i, a in enumerate(ann):
            for b in ann[i + 1:]:
                if a.appearance != b.appearance:
                    ca, cb = _chroma(frame, first == a.obj_id), _chroma(frame, first == b.obj_id)
                    differ += int(np.abs(ca - cb).max() >= 0.03)
    assert differ >= 1


def test_tiny_generates_in_seconds(tmp_path):
    t0 = time.process_time()  # CPU seconds: robust to a busy, shared machine
    m = generate_synthetic(tmp_path / "t", "tiny", seed=11)
    assert time.process_time() - t0 < 15.0
    assert sum(len(v) for v in m["splits"].values()) == 6


def test_exits_and_occlusions_match_masks(tmp_path):
    m = generate_synthetic(tmp_path / "d", "tiny", seed=2, videos=6, frames=16, size="72x120", lookalike=0.0)
    exits = 0
    for name, entry in m["sequences"].items():
        split = next(s for s, names in m["splits"].items() if name in names)
        if split == "test-dev":
            continue
        seq = DavisDataset(tmp_path / "d", split).sequence(name)
        masks = [seq.mask(t) for t in range(seq.num_frames)]
        for obj in entry["synthetic"]["objects"]:
            for s, e in obj["exits"]:
                exits += 1
                assert all(not np.any(masks[t] == obj["id"]) for t in range(s, e + 1))
            assert obj["reentries"] <= len(obj["exits"])
    assert exits > 0


# --------------------------------------------------------------------------- failures


def test_failure_leaves_nothing_and_keeps_previous(tmp_path, monkeypatch):
    root = tmp_path / "syn"
    generate_synthetic(root, "tiny", videos=2, frames=3)
    before = all_files(root)
    calls = {"n": 0}
    real = gen.write_video

    def boom(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(gen, "write_video", boom)
    with pytest.raises(DataError, match="cannot write"):
        generate_synthetic(root, "tiny", seed=9, videos=3, frames=3)
    assert all_files(root) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["syn"]
    calls["n"] = 0
    with pytest.raises(DataError, match="cannot write"):
        generate_synthetic(tmp_path / "new", "tiny", seed=9, videos=3, frames=3)
    assert not (tmp_path / "new").exists()


def test_refuses_foreign_folder_and_bad_options(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="not empty"):
        generate_synthetic(foreign, "tiny")
    assert (foreign / "notes.txt").read_text() == "keep me"
    with pytest.raises(ConfigError, match="unknown profile"):
        generate_synthetic(tmp_path / "x", "huge")
    with pytest.raises(ConfigError, match="bad size"):
        generate_synthetic(tmp_path / "x", "tiny", size="96by160")
    with pytest.raises(ConfigError, match="lookalike"):
        generate_synthetic(tmp_path / "x", "tiny", lookalike=1.5)
    with pytest.raises(ConfigError, match="frames"):
        generate_synthetic(tmp_path / "x", "tiny", frames=1)
    assert not (tmp_path / "x").exists()


def test_profile_overrides_share_videos():
    p = resolve_profile("small", videos=13, frames=5, size="120x200")
    assert sum(p.videos.values()) == 13 and all(v >= 1 for v in p.videos.values())
    assert p.videos["train"] > p.videos["val"] >= p.videos["test-dev"]
    assert p.frames == (5, 5) and p.size == (120, 200)
    d = resolve_profile("davis", videos=7)
    assert d.videos == {"train": 0, "val": 7, "test-dev": 0}


# --------------------------------------------------------------------------- baselines


def test_swap_ids_permutes_after_crossing():
    m = np.array([[0, 1, 2, 3]], np.uint8)
    groups = [{"ids": [1, 2], "cross_frame": 4}]
    assert swap_ids(m, groups, 4).tolist() == [[0, 1, 2, 3]]
    assert swap_ids(m, groups, 5).tolist() == [[0, 2, 1, 3]]
    assert swap_ids(m, [{"ids": [1, 2, 3], "cross_frame": 0}], 1).tolist() == [[0, 2, 3, 1]]


def test_baselines_score_as_expected(tiny_synthetic_root, tmp_path):
    m = manifest_of(tiny_synthetic_root)
    copy = write_baseline(tiny_synthetic_root, tmp_path / "copy", "copy", "train")
    swap = write_baseline(tiny_synthetic_root, tmp_path / "swap", "swap", "train")
    jc = mean_j(tiny_synthetic_root, copy, "train")
    js = mean_j(tiny_synthetic_root, swap, "train")
    assert jc.mean < 0.9
    lost = 0
    for name, score in js.per_sequence.items():
        groups = m["sequences"][name]["synthetic"]["lookalike_groups"]
        n = m["sequences"][name]["frames"]
        if not groups:
            assert score == pytest.approx(1.0)
        elif min(g["cross_frame"] for g in groups) < n - 2:
            assert score < 0.95
            lost += 1
    assert lost >= 1
    # the copy baseline repeats frame 0 everywhere
    first = read_mask(tiny_synthetic_root / "Annotations" / "480p" / "train-000" / "00000.png")
    assert np.array_equal(read_mask(copy / "train-000" / "00005.png"), first)


def test_mean_j_matches_the_evaluator(tiny_synthetic_root, tmp_path):
    from vosbench.metrics import evaluate_results

    copy = write_baseline(tiny_synthetic_root, tmp_path / "copy", "copy", "train")
    ours = mean_j(tiny_synthetic_root, copy, "train")
    res = evaluate_results(tiny_synthetic_root, copy, "train", write_csv=False, workers=1)
    assert ours.mean == pytest.approx(float(np.mean([o.j.mean for o in res.objects])), abs=1e-6)
    assert 0.05 < ours.mean < 0.95


def test_mean_j_ignores_void_and_checks_sizes(make_davis_root, tmp_path):
    root = make_davis_root({"s": (4, 1)}, size=(16, 16))
    ann = root / "Annotations" / "480p" / "s"
    res = tmp_path / "res" / "s"
    res.mkdir(parents=True)
    for t in range(4):
        gt = np.zeros((16, 16), np.uint8)
        gt[4:8, 4:8] = 1
        gt[8:12, 4:8] = 255  # void: the prediction may say anything there
        (ann / f"{t:05d}.png").write_bytes(encode_mask_png(gt))
        pred = np.zeros((16, 16), np.uint8)
        pred[4:12, 4:8] = 1
        (res / f"{t:05d}.png").write_bytes(encode_mask_png(pred))
    assert mean_j(root, tmp_path / "res").mean == pytest.approx(1.0)
    (res / "00001.png").write_bytes(encode_mask_png(np.zeros((8, 8), np.uint8)))
    with pytest.raises(DataError, match="00001.png: size"):
        mean_j(root, tmp_path / "res")


# --------------------------------------------------------------------------- CLI


@pytest.mark.parametrize("root_flag", ["--root", "--data"])  # --data: the dataset-root flag of every verb
def test_cli_prepare_synthetic(tmp_path, root_flag):
    root = tmp_path / "syn"
    res = runner.invoke(app, ["prepare", "synthetic", root_flag, str(root), "--profile", "tiny", "--videos", "3",
                              "--frames", "3", "--size", "48x64", "--seed", "5"])
    assert res.exit_code == 0, res.output
    assert "train" in res.output and "val" in res.output
    assert DavisDataset(root, "val").validate() == []
    assert read_frame(next((root / "JPEGImages" / "480p").rglob("*.jpg"))).shape == (48, 64, 3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--profile", "huge"], "huge"),
        (["--size", "48-64"], "bad size"),
        (["--size", "8x8"], "out of range"),
        (["--lookalike", "2"], "lookalike"),
    ],
)
def test_cli_prepare_bad_input(tmp_path, args, message):
    root = tmp_path / "syn"
    res = runner.invoke(app, ["prepare", "synthetic", "--root", str(root), "--profile", "tiny", *args])
    assert res.exit_code != 0
    assert message in res.output
    assert not root.exists()


def test_cli_prepare_unwritable_root(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = runner.invoke(app, ["prepare", "synthetic", "--root", str(blocker / "syn"), "--profile", "tiny"])
    assert res.exit_code == 1
    assert "cannot write" in res.output
    res = runner.invoke(app, ["prepare", "synthetic", "--root", str(blocker), "--profile", "tiny"])
    assert res.exit_code == 1 and "not a folder" in res.output


def test_cli_dataset_info(tiny_synthetic_root, tmp_path):
    out = tmp_path / "sheet.png"
    res = runner.invoke(app, ["dataset-info", "--data", str(tiny_synthetic_root), "--split", "train", "--out", str(out)])
    assert res.exit_code == 0, res.output
    for name in ("train-000", "train-001", "train-002"):
        assert name in res.output
    sheet = read_frame(out)
    assert sheet.shape[1] > 3 * 200 and sheet.shape[0] > 100
    assert "look-alike videos" in res.output
    res = runner.invoke(app, ["dataset-info", "--data", str(tiny_synthetic_root), "--split", "nope"])
    assert res.exit_code == 1 and "split file not found" in res.output
    res = runner.invoke(app, ["dataset-info", "--data", str(tmp_path / "missing")])
    assert res.exit_code == 1 and "not found" in res.output


def test_cli_dataset_info_writes_a_sheet_by_default(tiny_synthetic_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["dataset-info", "--data", str(tiny_synthetic_root), "--split", "val"])
    assert res.exit_code == 0, res.output
    assert [p.name for p in tmp_path.iterdir()] == ["contact-sheet-tiny-val.png"]
    assert read_frame(tmp_path / "contact-sheet-tiny-val.png").shape[0] > 50
    (tmp_path / "contact-sheet-tiny-val.png").unlink()
    res = runner.invoke(app, ["dataset-info", "--data", str(tiny_synthetic_root), "--no-sheet"])
    assert res.exit_code == 0 and list(tmp_path.iterdir()) == []
