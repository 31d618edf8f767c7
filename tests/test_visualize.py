"""visualize: overlay pixels, written files, frame counts and sizes, J/F plot values, CLI."""

from __future__ import annotations

import shutil

import av
import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from vosbench_cli.main import app
from vosbench.data.imageio import DAVIS_PALETTE, read_mask, write_mask
from vosbench.errors import ConfigError, DataError
from vosbench.visualize import (
    FALSE_NEGATIVE,
    FALSE_POSITIVE,
    PANEL_GAP,
    VisualizeOptions,
    compare_panels,
    error_pixels,
    mean_jf,
    overlay_masks,
    per_frame_scores,
    visualize_results,
)

SEQS = {"alpha": (5, 2), "beta": (4, 1)}  # as the davis_gt_results fixture makes them


def test_overlay_blends_davis_colours_and_outlines():
    frame = np.full((40, 60, 3), 100, np.uint8)
    mask = np.zeros((40, 60), np.uint8)
    mask[10:30, 10:25] = 1
    mask[10:30, 35:50] = 2
    out = overlay_masks(frame, mask, alpha=0.5, outline=False)
    np.testing.assert_array_equal(out[0, 0], frame[0, 0])  # background untouched
    for obj, (y, x) in ((1, (20, 17)), (2, (20, 42))):
        expected = np.round(0.5 * 100 + 0.5 * DAVIS_PALETTE[obj].astype(float))
        np.testing.assert_array_equal(out[y, x], expected)
    outlined = overlay_masks(frame, mask, alpha=0.5, outline=True)
    np.testing.assert_array_equal(outlined[10, 17], DAVIS_PALETTE[1])  # top edge of object 1
    np.testing.assert_array_equal(outlined[29, 42], DAVIS_PALETTE[2])  # bottom edge of object 2
    np.testing.assert_array_equal(outlined[20, 17], out[20, 17])  # interior is only blended
    np.testing.assert_array_equal(outlined[0, 0], frame[0, 0])
    with pytest.raises(DataError, match="differs from frame size"):
        overlay_masks(frame, mask[:-1])


def test_per_frame_scores_on_known_masks(tmp_path):
    gt = [np.zeros((20, 20), np.uint8) for _ in range(4)]
    for g in gt:
        g[5:15, 5:15] = 1  # 100 px
        g[0, 0] = 255  # void is background
    paths = []
    for t, g in enumerate(gt):
        paths.append(tmp_path / f"{t:05d}.png")
        write_mask(paths[-1], g)
    pred = [g.copy() for g in gt]
    pred[1][5:15, 5:10] = 0  # half of object 1 on frame 1 -> J = 0.5
    pred[2][:] = 0  # object lost on frame 2 -> J = F = 0
    pred[1][19, 19] = 3  # an id the first frame lacks is ignored, not an error
    scores = per_frame_scores("s", paths[::-1], {f"{t:05d}": p for t, p in enumerate(pred)})
    assert scores.n_objects == 1
    assert scores.frames == ["00001", "00002"]  # first and last frames are not scored
    np.testing.assert_allclose(scores.j, [[0.5, 0.0]])
    assert scores.f[0, 1] == 0.0 and 0.0 < scores.f[0, 0] < 1.0
    assert mean_jf(scores)[0] == pytest.approx(0.25)


def test_visualize_writes_frames_video_and_plot(davis_gt_results, tmp_path):
    root, results = davis_gt_results
    # object 2 of alpha is lost from frame 2 on, so its J drops
    for t in (2, 3, 4):
        p = results / "alpha" / f"{t:05d}.png"
        m = read_mask(p).copy()
        m[m == 2] = 0
        write_mask(p, m)
    out = tmp_path / "vis"
    written = visualize_results(results, root, "val", out_dir=out, options=VisualizeOptions(fps=5, frames=True))
    assert [v.name for v in written] == ["alpha", "beta"]
    for v, (n_frames, n_obj) in zip(written, SEQS.values()):
        pngs = sorted((out / v.name / "frames").glob("*.png"))
        assert [p.name for p in pngs] == [f"{t:05d}.png" for t in range(n_frames)]
        assert all(Image.open(p).size == (64, 48) and Image.open(p).mode == "RGB" for p in pngs)
        cap = cv2.VideoCapture(str(out / v.name / f"{v.name}.mp4"))
        try:
            assert cap.isOpened()
            assert (
                int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 64 and int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == 48
            )
            count = 0
            while cap.read()[0]:
                count += 1
        finally:
            cap.release()
        assert count == n_frames
        with av.open(str(out / v.name / f"{v.name}.mp4")) as container:  # what browsers play
            stream = container.streams.video[0]
            assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p")
        assert v.plot == out / v.name / f"{v.name}_jf.png" and v.plot.is_file()
        w, h = Image.open(v.plot).size
        assert w > 400 and h > 300
        assert v.scores is not None and v.scores.n_objects == n_obj
    alpha, beta = written
    np.testing.assert_allclose(alpha.scores.j[0], 1.0)
    np.testing.assert_allclose(alpha.scores.j[1], [1.0, 0.0, 0.0])  # frames 1, 2, 3
    np.testing.assert_allclose(beta.scores.j, 1.0)
    assert not any(p.name.startswith(".") for p in out.iterdir())  # no temp folders left


def test_visualize_one_sequence_without_ground_truth(make_davis_root, tmp_path):
    root = make_davis_root({"gamma": (4, 1)}, split="test-dev", annotate="first")
    results = tmp_path / "res"
    for t in range(4):
        write_mask(results / "gamma" / f"{t:05d}.png", np.zeros((48, 64), np.uint8))
    written = visualize_results(
        results, root, "test-dev", sequences=["gamma"], options=VisualizeOptions(video=False, frames=True)
    )
    (v,) = written
    assert v.plot is None and v.scores is None and v.video is None
    assert v.folder == tmp_path / "res-vis" / "gamma"
    assert len(list((v.folder / "frames").glob("*.png"))) == 4


def test_visualize_bad_input(davis_gt_results, tmp_path):
    root, results = davis_gt_results
    with pytest.raises(DataError, match="'nope' is not in split"):
        visualize_results(results, root, "val", sequences=["nope"], out_dir=tmp_path / "v")
    with pytest.raises(DataError, match="inside the results folder"):
        visualize_results(results, root, "val", out_dir=results / "vis")
    write_mask(results / "alpha" / "00003.png", np.zeros((40, 64), np.uint8))
    with pytest.raises(DataError, match="00003.png: mask size 64x40 differs"):
        visualize_results(results, root, "val", sequences=["alpha"], out_dir=tmp_path / "v")
    assert not (tmp_path / "v" / "alpha").exists() and not list((tmp_path / "v").glob(".alpha*"))
    (results / "beta" / "00002.png").unlink()
    with pytest.raises(DataError, match="00002.png: predicted mask missing"):
        visualize_results(results, root, "val", sequences=["beta"], out_dir=tmp_path / "v")
    assert not (tmp_path / "v" / "beta").exists()
    shutil.rmtree(results / "beta")
    with pytest.raises(DataError, match="no results for sequence beta"):
        visualize_results(results, root, "val", out_dir=tmp_path / "v")
    with pytest.raises(ConfigError, match="alpha must lie"):
        VisualizeOptions(alpha=1.5)


def test_cli_visualize(davis_gt_results, tmp_path):
    root, results = davis_gt_results
    runner = CliRunner()
    out = tmp_path / "v"
    res = runner.invoke(
        app,
        [
            "visualize",
            "--results",
            str(results),
            "--data",
            str(root),
            "--seq",
            "beta",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "beta" in res.output and "100.0" in res.output  # scores print in percent
    # by default the video and the J/F plot, no PNG frames
    assert sorted(p.name for p in (out / "beta").iterdir()) == ["beta.mp4", "beta_jf.png"]
    assert not (out / "alpha").exists()
    res = runner.invoke(app, ["visualize", "--results", str(tmp_path / "none"), "--data", str(root)])
    assert res.exit_code == 1
    assert "results not found" in res.output


def test_visualize_a_submission_zip(davis_gt_results, tmp_path):
    from vosbench.submission import package_submission

    root, results = davis_gt_results
    package_submission(results, root, "val", tmp_path / "entry.zip")
    opts = VisualizeOptions(video=False, frames=True)
    (from_zip,) = visualize_results(tmp_path / "entry.zip", root, "val", sequences=["alpha"], options=opts)
    (from_dir,) = visualize_results(results, root, "val", sequences=["alpha"], options=opts)
    assert from_zip.folder == tmp_path / "entry-vis" / "alpha"
    for name in ("00000.png", "00003.png"):
        a = np.asarray(Image.open(from_zip.folder / "frames" / name))
        b = np.asarray(Image.open(from_dir.folder / "frames" / name))
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(from_zip.scores.j, from_dir.scores.j)


def test_video_of_odd_sized_frames_is_padded(make_davis_root, tmp_path):
    root = make_davis_root({"odd": (3, 1)}, size=(47, 63))
    (v,) = visualize_results(root / "Annotations" / "480p", root, "val", out_dir=tmp_path / "v",
                             options=VisualizeOptions(frames=True))
    cap = cv2.VideoCapture(str(v.video))
    try:
        size = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        cap.release()
    assert size == (64, 48)
    assert Image.open(v.frames_dir / "00000.png").size == (63, 47)


def test_error_pixels_by_hand():
    gt = np.array([[0, 0, 1, 1], [2, 2, 255, 0]], np.uint8)
    pred = np.array([[0, 1, 1, 0], [1, 2, 1, 0]], np.uint8)
    err = error_pixels(gt, pred)
    assert err["false positive"].tolist() == [[False, True, False, False], [False, False, False, False]]
    assert err["false negative"].tolist() == [[False, False, False, True], [False, False, False, False]]
    assert err["wrong object"].tolist() == [[False, False, False, False], [True, False, False, False]]  # void: never


def test_compare_panels_paint_errors_on_the_right():
    frame = np.full((20, 30, 3), 100, np.uint8)
    gt = np.zeros((20, 30), np.uint8)
    gt[10:20, 0:10] = 1
    pred = np.zeros((20, 30), np.uint8)
    pred[10:20, 5:15] = 1  # columns 5-9 right, 10-14 false positive, 0-4 false negative
    out = compare_panels(frame, gt, pred, outline=False)
    assert out.shape == (20, 2 * 30 + PANEL_GAP, 3)
    right = out[:, 30 + PANEL_GAP:]
    assert tuple(right[15, 12]) == FALSE_POSITIVE and tuple(right[15, 2]) == FALSE_NEGATIVE
    assert tuple(right[15, 7]) == tuple(out[15, 7])  # a right pixel looks the same in both panels
    assert tuple(right[15, 25]) == (100, 100, 100)  # background, right on both sides: the frame


def test_cli_compare_video_is_two_panels_wide(davis_gt_results, tmp_path):
    root, results = davis_gt_results
    out = tmp_path / "v"
    res = CliRunner().invoke(app, ["visualize", "--results", str(results), "--data", str(root), "--seq", "alpha",
                                   "--out", str(out), "--compare", "--frames"])
    assert res.exit_code == 0, res.output
    assert Image.open(out / "alpha" / "frames" / "00000.png").size == (2 * 64 + PANEL_GAP, 48)
    cap = cv2.VideoCapture(str(out / "alpha" / "alpha.mp4"))
    try:
        assert int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 2 * 64 + PANEL_GAP
    finally:
        cap.release()
