"""`vosbench infer --video`: an mp4 or a frames folder gives the masks of a DAVIS-layout run of the same frames."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.conftest import REAL_SEQUENCES, REAL_VOS
from vosbench.data.imageio import read_mask, write_mask
from vosbench.infer import InferOptions, infer_dataset, infer_video
from vosbench_cli.main import app

runner = CliRunner()
H, W, N = 64, 112, 6  # even sizes: yuv420p


def _clip() -> tuple[list[np.ndarray], np.ndarray]:
    """N real DAVIS frames (blackswan) downscaled to HxW, and a two-object first mask (the swan + a box)."""
    folder = REAL_VOS / REAL_SEQUENCES["blackswan"]
    frames = []
    for t in range(N):
        with Image.open(folder / "JPEGImages" / "480p" / "blackswan" / f"{t:05d}.jpg") as img:
            frames.append(np.asarray(img.convert("RGB").resize((W, H), Image.BILINEAR)))
    with Image.open(folder / "Annotations" / "480p" / "blackswan" / "00000.png") as img:
        mask = np.asarray(img.resize((W, H), Image.NEAREST)).copy()
    mask[4:14, 4:20] = 2
    return frames, mask


def _write_mp4(path: Path, frames: list[np.ndarray], fps: int = 10) -> None:
    with av.open(str(path), mode="w", options={"movflags": "+faststart"}) as container:  # index first
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for f in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        container.mux(stream.encode(None))


def _decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def _davis_run(tmp: Path, frames: list[np.ndarray], mask: np.ndarray, ckpt: Path) -> Path:
    """The reference: the same frames as lossless PNGs in a DAVIS-layout root, run by infer_dataset."""
    root = tmp / "davis"
    for t, f in enumerate(frames):
        p = root / "JPEGImages" / "480p" / "clip" / f"{t:05d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(f).save(p)
    write_mask(root / "Annotations" / "480p" / "clip" / "00000.png", mask)
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("clip\n")
    infer_dataset(str(ckpt), root, out=tmp / "ref", options=InferOptions(save_probs=True))
    return tmp / "ref" / "clip"


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("video")
    frames, mask = _clip()
    _write_mp4(tmp / "clip.mp4", frames)
    write_mask(tmp / "first.png", mask)
    return tmp, frames, mask


def test_mp4_gives_the_masks_of_the_davis_run_of_its_decoded_frames(clip, tiny_checkpoint, tmp_path):
    tmp, _, mask = clip
    ckpt = tiny_checkpoint("stm-tiny")
    decoded = _decode(tmp / "clip.mp4")  # decoded here, independently of vosbench
    assert len(decoded) == N
    ref = _davis_run(tmp_path, decoded, mask, ckpt)
    out = tmp_path / "masks"
    res = infer_video(str(ckpt), tmp / "clip.mp4", tmp / "first.png", out,
                      options=InferOptions(save_probs=True), overlay=True)
    assert res.frames == N and res.size == (H, W) and res.fps == pytest.approx(10)
    names = [f"{t:05d}" for t in range(N)]
    assert sorted(p.stem for p in out.glob("*.png")) == names
    for n in names:
        assert np.array_equal(read_mask(out / f"{n}.png"), read_mask(ref / f"{n}.png")), n
        a, b = np.load(out / "probs" / f"{n}.npz"), np.load(ref / "probs" / f"{n}.npz")
        assert np.array_equal(a["probs"], b["probs"])
    assert set(np.unique(read_mask(out / "00000.png"))) == {0, 1, 2}
    assert (out / "provenance.json").is_file()
    with av.open(str(out / "overlay.mp4")) as c:  # H.264 at the video's rate, one frame per frame
        s = c.streams.video[0]
        assert s.codec_context.name == "h264" and float(s.average_rate) == pytest.approx(10)
        assert sum(1 for _ in c.decode(s)) == N
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_frames_folder_in_numeric_order_with_mask_on_a_later_frame(clip, tiny_checkpoint, tmp_path):
    _, frames, mask = clip
    ckpt = tiny_checkpoint("stm-tiny")
    folder = tmp_path / "frames"
    folder.mkdir()
    for t, f in enumerate(frames):  # frame_1 ... frame_6 would sort frame_10 before frame_2 as text
        Image.fromarray(f).save(folder / f"frame_{t * 4 + 1}.png")
    grey = tmp_path / "grey.png"  # a grey 0/255 mask: one object
    Image.fromarray(np.where(mask == 1, 255, 0).astype(np.uint8), mode="L").save(grey)
    out = tmp_path / "masks"
    infer_video(str(ckpt), folder, grey, out, mask_frame=2)
    names = [f"frame_{t * 4 + 1}" for t in range(N)]
    assert sorted(p.stem for p in out.glob("*.png")) == sorted(names)
    for n in names[:2]:  # before the given frame: background
        assert not read_mask(out / f"{n}.png").any()
    assert np.array_equal(read_mask(out / f"{names[2]}.png"), (mask == 1).astype(np.uint8))
    # the reference: frames 2.. of the same PNG frames as a DAVIS run from frame 2
    ref = _davis_run(tmp_path / "r", frames[2:], (mask == 1).astype(np.uint8), ckpt)
    for t, n in enumerate(names[2:]):
        assert np.array_equal(read_mask(out / f"{n}.png"), read_mask(ref / f"{t:05d}.png")), n


def test_rerun_skips_and_another_mask_refuses(clip, tiny_checkpoint, tmp_path):
    tmp, _, mask = clip
    ckpt = str(tiny_checkpoint("stm-tiny"))
    out = tmp_path / "masks"
    base = ["infer", "--checkpoint", ckpt, "--video", str(tmp / "clip.mp4"), "--out", str(out)]
    res = runner.invoke(app, [*base, "--first-mask", str(tmp / "first.png")])
    assert res.exit_code == 0, res.output
    assert f"clip.mp4: {N} frames, {W}x{H}, 10 frames/s" in res.output and "written" in res.output
    res = runner.invoke(app, [*base, "--first-mask", str(tmp / "first.png")])
    assert res.exit_code == 0 and "skipped" in res.output
    other = tmp_path / "other.png"
    write_mask(other, (mask == 1).astype(np.uint8))
    res = runner.invoke(app, [*base, "--first-mask", str(other)])
    assert res.exit_code == 1 and "video.mask_sha256" in res.output


def _bad_inputs(tmp: Path, clip_dir: Path) -> dict[str, tuple[Path, Path, str]]:
    data = (clip_dir / "clip.mp4").read_bytes()
    (tmp / "cut.mp4").write_bytes(data[: len(data) * 3 // 4])  # the index lists frames that are gone
    (tmp / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    write_mask(tmp / "small.png", np.ones((H // 2, W // 2), np.uint8))
    mixed = tmp / "mixed"
    mixed.mkdir()
    Image.new("RGB", (W, H)).save(mixed / "0.jpg")
    Image.new("RGB", (W, H + 2)).save(mixed / "1.jpg")
    write_mask(tmp / "empty.png", np.zeros((H, W), np.uint8))
    first = clip_dir / "first.png"
    return {
        "cut": (tmp / "cut.mp4", first, "cut.mp4: corrupt"),
        "noise": (tmp / "noise.mp4", first, "noise.mp4: cannot open the video"),
        "size": (clip_dir / "clip.mp4", tmp / "small.png", "mask size 56x32 differs from the video's frame size 112x64"),
        "mixed": (mixed, first, "1.jpg: frame size 112x66 differs"),
        "empty": (clip_dir / "clip.mp4", tmp / "empty.png", "the mask has no objects"),
        "missing": (tmp / "nope.mp4", first, "nope.mp4: video file or frames folder not found"),
    }


@pytest.mark.parametrize("case", ["cut", "noise", "size", "mixed", "empty", "missing"])
def test_bad_video_or_mask_is_one_line_and_writes_nothing(clip, tiny_checkpoint, tmp_path, case):
    video, mask, message = _bad_inputs(tmp_path, clip[0])[case]
    out = tmp_path / "masks"
    res = runner.invoke(app, ["infer", "--checkpoint", str(tiny_checkpoint("stm-tiny")), "--video", str(video),
                              "--first-mask", str(mask), "--out", str(out)])
    assert res.exit_code == 1, res.output
    assert message in res.output and res.output.strip().count("\n") == 0 and res.output.startswith("error:")
    assert not out.exists()


def test_video_options_go_together(tiny_checkpoint, tmp_path):
    ckpt = str(tiny_checkpoint("stm-tiny"))
    res = runner.invoke(app, ["infer", "--checkpoint", ckpt, "--video", "x.mp4", "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "--video needs --first-mask" in res.output
    res = runner.invoke(app, ["infer", "--checkpoint", ckpt, "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "exactly one of --data ROOT" in res.output
    res = runner.invoke(app, ["infer", "--checkpoint", ckpt, "--video", "x.mp4", "--first-mask", "m.png",
                              "--given", "first", "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "--given goes with --data" in res.output
    assert not (tmp_path / "o").exists()


def test_out_with_only_hidden_files_counts_as_empty(clip, tiny_checkpoint, tmp_path):
    tmp, _, _ = clip
    out = tmp_path / "masks"
    out.mkdir()
    (out / ".lock").write_text("")  # e.g. another tool's lock file
    infer_video(str(tiny_checkpoint("stm-tiny")), tmp / "clip.mp4", tmp / "first.png", out)
    assert (out / "00005.png").is_file()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")  # someone's folder is never replaced
    res = runner.invoke(app, ["infer", "--checkpoint", str(tiny_checkpoint("stm-tiny")), "--video",
                              str(tmp / "clip.mp4"), "--first-mask", str(tmp / "first.png"), "--out",
                              str(tmp_path / "mine"), "--overwrite"])
    assert res.exit_code == 1 and "holds no vosbench results" in res.output
    assert (tmp_path / "mine" / "notes.txt").read_text() == "mine"
