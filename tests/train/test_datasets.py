"""Clip datasets: sample layout, determinism, object slots, static-image clips, weighted mix, depth."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from vosbench.data.augment import AugFrame
from vosbench.data.imageio import write_depth, write_frame, write_mask
from vosbench.errors import DataError
from vosbench.train.config import AugmentSection, DataSection, SourceSection
from vosbench.train.datasets import ClipDataset, open_sources, relabel, to_tensors


def _data(root: Path, **kw) -> DataSection:
    base = {"root": str(root), "split": "train", "crop": (32, 48), "short_side": (48, 56), "max_objects": 3, "samples_per_epoch": 8}
    base.update(kw)
    return DataSection(**base)


def test_video_samples_layout_and_determinism(make_davis_root: Callable[..., Path]) -> None:
    root = make_davis_root({"a": (8, 2), "b": (6, 3)}, split="train", size=(48, 64))
    data = _data(root)
    ds = ClipDataset(open_sources(data), data, AugmentSection(), seed=3)
    ds.set_epoch(0, 2)
    s = ds[1]
    assert s["images"].shape == (3, 3, 32, 48) and s["images"].dtype == torch.float32
    assert 0.0 <= float(s["images"].min()) and float(s["images"].max()) <= 1.0
    assert s["masks"].shape == (3, 3, 32, 48) and s["target"].shape == (3, 32, 48)
    assert s["valid"].shape == (3,) and s["valid"].dtype == torch.bool
    k = int(s["valid"].sum())
    assert k >= 1
    # one-hot masks agree with the id target; padded slots are empty; every valid object is in frame 0
    for slot in range(3):
        assert torch.equal(s["masks"][:, slot] > 0, s["target"] == slot + 1)
        if slot >= k:
            assert not s["masks"][:, slot].any()
        else:
            assert s["masks"][0, slot].any()
    assert int(s["target"].max()) <= k
    again = ds[1]
    assert all(torch.equal(s[key], again[key]) for key in s)
    ds.set_epoch(1, 2)
    assert not torch.equal(ds[1]["images"], s["images"])


def test_objects_absent_from_first_frame_become_background() -> None:
    f0 = np.zeros((8, 8), np.uint8)
    f0[:2, :2] = 1
    f1 = f0.copy()
    f1[5:, 5:] = 2  # object 2 appears only later
    frames = [AugFrame(np.zeros((8, 8, 3), np.uint8), m) for m in (f0, f1, f1)]
    s = to_tensors(frames, 3, depth=False)
    assert s["valid"].tolist() == [True, False, False]
    assert int(s["target"][1].max()) == 1
    assert relabel(np.array([[3, 7, 255]], np.uint8), [7, 3]).tolist() == [[2, 1, 0]]


def test_static_stage_deforms_one_image_into_a_clip(make_davis_root: Callable[..., Path]) -> None:
    root = make_davis_root({"a": (2, 2)}, split="train", size=(48, 64))
    data = _data(root, stage="static")
    ds = ClipDataset(open_sources(data), data, AugmentSection(elastic_alpha=3.0, rotate=20), seed=0)
    s = ds[0]
    assert s["images"].shape[0] == 3
    assert not torch.equal(s["target"][0], s["target"][1])  # independently deformed frames
    assert s["valid"].any()


def test_static_folder_source(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for i in range(2):
        m = np.zeros((40, 50), np.uint8)
        m[10:30, 10 + i * 5:30 + i * 5] = 1
        m[2:8, 2:8] = 2
        write_frame(tmp_path / "static" / "images" / f"im{i}.jpg", rng.integers(0, 255, (40, 50, 3)).astype(np.uint8))
        write_mask(tmp_path / "static" / "masks" / f"im{i}.png", m)
    data = _data(tmp_path, stage="static", sources=[SourceSection(kind="static", root=str(tmp_path / "static"))])
    ds = ClipDataset(open_sources(data), data, AugmentSection(), seed=0)
    assert ds[0]["images"].shape == (3, 3, 32, 48)


def test_weighted_mix_follows_weights(make_davis_root: Callable[..., Path], tmp_path: Path) -> None:
    r1 = make_davis_root({"a": (4, 1)}, split="train", root=tmp_path / "one", seed=1)
    r2 = make_davis_root({"b": (4, 1)}, split="train", root=tmp_path / "two", seed=2)
    data = _data(tmp_path, sources=[SourceSection(root=str(r1), weight=3.0), SourceSection(root=str(r2), weight=1.0)],
                 samples_per_epoch=400)
    ds = ClipDataset(open_sources(data), data, AugmentSection(), seed=0)
    assert np.allclose(ds.weights, [0.75, 0.25])
    picks: list[int] = []
    for k, src in enumerate(ds.sources):  # record which source each clip is read from
        real = src.read_clip

        def read_clip(*args, _k=k, _real=real, **kwargs):
            picks.append(_k)
            return _real(*args, **kwargs)

        src.read_clip = read_clip  # type: ignore[method-assign]
    ds.set_epoch(0, 1)
    for i in range(400):
        ds._raw_clip(np.random.default_rng([0, 0, i]))
    assert len(picks) == 400
    assert 0.65 < picks.count(0) / 400 < 0.85


def test_depth_is_loaded_and_missing_depth_is_named(make_davis_root: Callable[..., Path]) -> None:
    root = make_davis_root({"a": (4, 1)}, split="train", size=(48, 64))
    data = _data(root)
    with pytest.raises(DataError, match=r"Depth/480p/a does not exist.*vosbench prepare depth"):  # before training
        ClipDataset(open_sources(data), data, AugmentSection(), depth=True, seed=0)
    for t in range(4):
        write_depth(root / "Depth" / "480p" / "a" / f"{t:05d}.png", np.full((48, 64), 0.5, np.float32))
    ds = ClipDataset(open_sources(data), data, AugmentSection(), depth=True, seed=0)
    s = ds[0]
    assert s["depth"].shape == (3, 1, 32, 48)
    assert float(s["depth"].max()) <= 1.0


def test_missing_root_and_split_are_clear(make_davis_root: Callable[..., Path], tmp_path: Path) -> None:
    with pytest.raises(DataError, match="dataset root not found"):
        open_sources(_data(tmp_path / "nope"))
    root = make_davis_root({"a": (3, 1)}, split="val")
    with pytest.raises(DataError, match="split file not found"):
        open_sources(_data(root, split="train"))
    with pytest.raises(DataError, match="no dataset root"):
        open_sources(_data(""))


def test_youtube_source(tmp_path: Path) -> None:
    import json

    root = tmp_path / "yt"
    rng = np.random.default_rng(0)
    stems = ["00000", "00005", "00010", "00015"]
    for i, stem in enumerate(stems):
        m = np.zeros((48, 64), np.uint8)
        m[10 + i:30 + i, 10:30] = 1
        if i >= 2:
            m[35:45, 40:60] = 2  # object 2 first appears in the third annotated frame
        write_frame(root / "train" / "JPEGImages" / "v1" / f"{stem}.jpg", rng.integers(0, 255, (48, 64, 3)).astype(np.uint8))
        write_mask(root / "train" / "Annotations" / "v1" / f"{stem}.png", m)
    meta = {"videos": {"v1": {"objects": {"1": {"category": "a", "frames": stems},
                                         "2": {"category": "b", "frames": stems[2:]}}}}}
    (root / "train" / "meta.json").write_text(json.dumps(meta))
    data = _data(tmp_path, sources=[SourceSection(kind="youtube", root=str(root), split="train")])
    ds = ClipDataset(open_sources(data), data, AugmentSection(), seed=0)
    ds.set_epoch(0, 0)
    s = ds[0]
    assert s["images"].shape == (3, 3, 32, 48) and bool(s["valid"][0])


def test_epoch_max_skip_reaches_the_frame_sampler(make_davis_root: Callable[..., Path],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from vosbench.train import datasets

    root = make_davis_root({"a": (12, 1)}, split="train", size=(48, 64))
    data = _data(root)
    ds = ClipDataset(open_sources(data), data, AugmentSection(), seed=0)
    seen: list[int] = []
    real = datasets.sample_frame_indices

    def spy(rng, n, clip_frames, max_skip):
        seen.append(max_skip)
        return real(rng, n, clip_frames, max_skip)

    monkeypatch.setattr(datasets, "sample_frame_indices", spy)
    for epoch, skip in ((0, 0), (3, 7)):
        ds.set_epoch(epoch, skip)
        ds[0]
        assert seen and set(seen) == {skip}
        seen.clear()


def test_scm_prior_is_the_ground_truth_of_the_video_frame_before_each_target(tmp_path: Path) -> None:
    """SCM §2.3: with large skips the prior of a sampled frame is frame t-1 of the video, not the
    previous sampled frame. Each frame's mask is a bar at its own column, so a mask names its frame."""
    from vosbench.data.imageio import read_mask

    root, n, (h, w) = tmp_path / "davis", 12, (32, 64)
    for i in range(n):
        m = np.zeros((h, w), np.uint8)
        m[8:24, 4 * i:4 * i + 6] = 1
        write_frame(root / "JPEGImages" / "480p" / "bars" / f"{i:05d}.jpg", np.full((h, w, 3), 90, np.uint8))
        write_mask(root / "Annotations" / "480p" / "bars" / f"{i:05d}.png", m)
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "train.txt").write_text("bars\n")
    truth = [read_mask(root / "Annotations" / "480p" / "bars" / f"{i:05d}.png") == 1 for i in range(n)]
    identity = AugmentSection(flip=False, rotate=0.0, scale=(1.0, 1.0), shear=0.0, brightness=0.0, contrast=0.0,
                              saturation=0.0, hue=0.0)
    data = _data(root, crop=(h, w), short_side=(h, h), max_objects=1, samples_per_epoch=16)
    ds = ClipDataset(open_sources(data), data, identity, seed=0, prior=True)
    ds.set_epoch(0, 5)

    def frame_of(mask: torch.Tensor) -> int:
        return next(i for i in range(n) if np.array_equal(mask.numpy() > 0, truth[i]))

    gaps = 0
    for index in range(16):
        s = ds[index]
        frames = [frame_of(s["masks"][t, 0]) for t in range(3)]
        assert frames == sorted(set(frames))
        for t in (1, 2):
            assert frame_of(s["prior"][t, 0]) == frames[t] - 1
        gaps += any(frames[t] - frames[t - 1] > 1 for t in (1, 2))
    assert gaps > 0  # some clips skipped frames, so the prior is not simply the previous sampled frame
    plain = ClipDataset(open_sources(data), data, identity, seed=0)  # models without the prior load none
    plain.set_epoch(0, 5)
    assert "prior" not in plain[0]
