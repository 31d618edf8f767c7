import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from vosbench_cli.main import app
from tests.data.archive_helpers import ServedFile, fail_disk_after, http_server, replace_member, zip_tree
from vosbench.data.davis import DavisDataset
from vosbench.data.imageio import encode_mask_png
from vosbench.data.prepare import manifest_summary, prepare_davis2017
from vosbench.errors import DataError, DownloadError

runner = CliRunner()


@pytest.fixture
def trainval_zip(tmp_path, make_davis_root):
    src = tmp_path / "src_trainval"
    make_davis_root({"bear": (4, 1), "cows": (3, 2)}, split="train", root=src, seed=1)
    make_davis_root({"dogs": (5, 3)}, split="val", root=src, seed=2)
    return zip_tree(src, tmp_path / "DAVIS-2017-trainval-480p.zip")


@pytest.fixture
def testdev_zip(tmp_path, make_davis_root):
    src = tmp_path / "src_testdev"
    make_davis_root({"eel": (3, 2)}, split="test-dev", root=src, annotate="first", seed=3)
    return zip_tree(src, tmp_path / "DAVIS-2017-test-dev-480p.zip")


def check_trainval(root, manifest):
    assert sorted(manifest["splits"]) == ["train", "val"]
    assert manifest["splits"]["train"] == ["bear", "cows"]
    assert manifest["sequences"]["dogs"]["frames"] == 5
    assert set(manifest["sequences"]["dogs"]["object_ids"]) <= {1, 2, 3}
    assert (
        manifest["sequences"]["dogs"]["object_ids"] == DavisDataset(root, "val").sequence("dogs").object_ids
    )
    assert manifest["sequences"]["cows"]["height"] == 48 and manifest["sequences"]["cows"]["width"] == 64
    assert json.loads((root / "manifest.json").read_text()) == manifest
    assert not (root / "DAVIS").exists()
    assert DavisDataset(root, "val").validate(full=True) == []


def test_download_with_dropped_connection_resumes(tmp_path, trainval_zip):
    data = trainval_zip.read_bytes()
    files = {"/share/DAVIS-2017-trainval-480p.zip": ServedFile(data, drop_after=len(data) // 3)}
    root = tmp_path / "data" / "davis"
    with http_server(files) as base:
        manifest = prepare_davis2017(
            root,
            "trainval",
            "480p",
            url=f"{base}/share/DAVIS-2017-trainval-480p.zip",
            download_dir=tmp_path / "dl",
            retries=2,
            backoff=0,
        )
    assert files["/share/DAVIS-2017-trainval-480p.zip"].requests == [None, f"bytes={len(data) // 3}-"]
    assert (tmp_path / "dl" / "DAVIS-2017-trainval-480p.zip").read_bytes() == data
    assert not (tmp_path / "dl" / "DAVIS-2017-trainval-480p.zip.part").exists()
    check_trainval(root, manifest)
    assert manifest["sources"][0]["origin"].startswith("http://127.0.0.1")
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["davis"]  # no temp folders left


def test_trainval_and_testdev_merge(tmp_path, trainval_zip, testdev_zip):
    root = tmp_path / "davis"
    prepare_davis2017(root, "trainval", archive=trainval_zip)
    manifest = prepare_davis2017(root, "test-dev", archive=testdev_zip)
    assert sorted(manifest["splits"]) == ["test-dev", "train", "val"]
    assert manifest["sequences"]["eel"]["annotated_frames"] == 1
    assert [s["split"] for s in manifest["sources"]] == ["trainval", "test-dev"]
    rows = {r["split"]: r for r in manifest_summary(manifest)}
    assert rows["train"]["frames"] == 7 and rows["val"]["objects"] == len(
        manifest["sequences"]["dogs"]["object_ids"]
    )
    # Preparing the same archive again is idempotent.
    again = prepare_davis2017(root, "trainval", archive=trainval_zip)
    assert again["sequences"] == manifest["sequences"] and len(again["sources"]) == 2


def test_two_resolutions_in_one_root_keep_both_manifest_sections(tmp_path, make_davis_root, trainval_zip):
    full = tmp_path / "src_full"
    make_davis_root({"bear": (4, 1)}, split="train", root=full, size=(96, 128), resolution="Full-Resolution")
    make_davis_root({"dogs": (5, 3)}, split="val", root=full, size=(96, 128), resolution="Full-Resolution")
    full_zip = zip_tree(full, tmp_path / "DAVIS-2017-trainval-Full-Resolution.zip")
    root = tmp_path / "davis"
    first = prepare_davis2017(root, "trainval", archive=trainval_zip)
    both = prepare_davis2017(root, "trainval", "Full-Resolution", archive=full_zip)
    assert both["resolution"] == "Full-Resolution" and both["sequences"]["dogs"]["height"] == 96
    assert list(both["resolutions"]) == ["480p", "Full-Resolution"]
    assert both["resolutions"]["480p"]["sequences"] == first["sequences"]
    assert both["resolutions"]["480p"]["sequences"]["cows"]["height"] == 48
    assert both["resolutions"]["Full-Resolution"]["splits"] == {"train": ["bear"], "val": ["dogs"]}
    assert json.loads((root / "manifest.json").read_text()) == both


def test_wrong_resolution_or_split_is_refused(tmp_path, trainval_zip):
    with pytest.raises(DataError, match="no JPEGImages/Full-Resolution folder .it has 480p"):
        prepare_davis2017(tmp_path / "r", "trainval", "Full-Resolution", archive=trainval_zip)
    other = zip_tree(tmp_path / "src_trainval" / "ImageSets", tmp_path / "other.zip", prefix="stuff")
    with pytest.raises(DataError, match=r"other\.zip: no JPEGImages/480p folder .*top level holds: stuff"):
        prepare_davis2017(tmp_path / "r", "trainval", archive=other)
    with pytest.raises(DataError, match="ImageSets/2017/test-dev.txt missing"):
        prepare_davis2017(tmp_path / "r", "test-dev", "480p", archive=trainval_zip)
    assert not (tmp_path / "r").exists()


def test_cli_success_prints_summary(tmp_path, trainval_zip):
    root = tmp_path / "davis"
    result = runner.invoke(app, ["prepare", "davis2017", "--root", str(root), "--archive", str(trainval_zip)])
    assert result.exit_code == 0, result.output
    assert "train" in result.output and "val" in result.output and "manifest" in result.output
    check_trainval(root, json.loads((root / "manifest.json").read_text()))


def test_cli_help_has_example():
    result = runner.invoke(app, ["prepare", "davis2017", "--help"])
    assert result.exit_code == 0 and "Example" in result.output and "--archive" in result.output


def _truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _rgb_png(path_bytes: bytes) -> bytes:
    import io

    img = Image.open(io.BytesIO(path_bytes)).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    "member, transform, expected",
    [
        (
            "DAVIS/JPEGImages/480p/cows/00001.jpg",
            _truncate,
            r"JPEGImages/480p/cows/00001\.jpg: corrupt or truncated image",
        ),
        (
            "DAVIS/JPEGImages/480p/cows/00001.jpg",
            lambda b: b"\xff\xd8not a jpeg",
            r"cows/00001\.jpg: corrupt",
        ),
        (
            "DAVIS/Annotations/480p/dogs/00002.png",
            _truncate,
            r"Annotations/480p/dogs/00002\.png: corrupt or truncated",
        ),
        (
            "DAVIS/Annotations/480p/bear/00000.png",
            lambda b: encode_mask_png(np.zeros((40, 64), np.uint8)),
            r"bear/00000\.png: mask size 64x40 differs from frame size 64x48",
        ),
        ("DAVIS/Annotations/480p/bear/00000.png", _rgb_png, r"bear/00000\.png: mask is RGB"),
        (
            "DAVIS/ImageSets/2017/val.txt",
            lambda b: b"dogs\nghost\n",
            r"JPEGImages/480p/ghost: no frames for sequence 'ghost'",
        ),
    ],
)
def test_cli_bad_files_inside_archive(tmp_path, trainval_zip, member, transform, expected):
    import zipfile

    with zipfile.ZipFile(trainval_zip) as zf:
        original = zf.read(member)
    replace_member(trainval_zip, member, transform(original))
    root = tmp_path / "davis"
    result = runner.invoke(app, ["prepare", "davis2017", "--root", str(root), "--archive", str(trainval_zip)])
    assert result.exit_code == 1
    lines = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, result.output
    assert "DAVIS-2017-trainval-480p.zip:" in lines[0]
    assert __import__("re").search(expected, lines[0]), lines[0]
    assert not root.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_cli_missing_imageset_file(tmp_path, make_davis_root):
    src = tmp_path / "src"
    make_davis_root({"bear": (3, 1)}, split="train", root=src)  # trainval archive without val.txt
    z = zip_tree(src, tmp_path / "t.zip")
    result = runner.invoke(app, ["prepare", "davis2017", "--root", str(tmp_path / "d"), "--archive", str(z)])
    assert result.exit_code == 1 and "t.zip: ImageSets/2017/val.txt missing" in result.output
    assert not (tmp_path / "d").exists()


def test_cli_missing_first_frame_annotation(tmp_path, trainval_zip):
    import zipfile

    with zipfile.ZipFile(trainval_zip) as zf:
        items = [
            (i, zf.read(i)) for i in zf.infolist() if i.filename != "DAVIS/Annotations/480p/dogs/00000.png"
        ]
    with zipfile.ZipFile(trainval_zip, "w") as zf:
        for info, blob in items:
            zf.writestr(info, blob)
    result = runner.invoke(
        app, ["prepare", "davis2017", "--root", str(tmp_path / "d"), "--archive", str(trainval_zip)]
    )
    assert result.exit_code == 1
    assert "dogs/00000.png: first-frame annotation missing" in result.output


@pytest.mark.parametrize("kind", ["traversal", "absolute", "truncated"])
def test_cli_unsafe_or_broken_archive(tmp_path, trainval_zip, kind):
    import zipfile

    if kind == "truncated":
        data = trainval_zip.read_bytes()
        trainval_zip.write_bytes(data[: len(data) - 200])
    else:
        name = "DAVIS/../../escaped.txt" if kind == "traversal" else "/tmp/vosbench-escaped.txt"
        with zipfile.ZipFile(trainval_zip, "a") as zf:
            zf.writestr(name, b"evil")
    root = tmp_path / "work" / "davis"
    result = runner.invoke(app, ["prepare", "davis2017", "--root", str(root), "--archive", str(trainval_zip)])
    assert result.exit_code == 1
    assert "DAVIS-2017-trainval-480p.zip" in result.output
    assert len([ln for ln in result.output.splitlines() if ln.startswith("error:")]) == 1
    assert not root.exists() and not list(tmp_path.rglob("escaped.txt"))


def test_cli_disk_full_leaves_nothing(tmp_path, trainval_zip, monkeypatch):
    fail_disk_after(monkeypatch, 7)
    root = tmp_path / "work" / "davis"
    result = runner.invoke(app, ["prepare", "davis2017", "--root", str(root), "--archive", str(trainval_zip)])
    assert result.exit_code == 1 and "disk full while extracting" in result.output
    assert list((tmp_path / "work").iterdir()) == []


def test_cli_download_404(tmp_path):
    with http_server({}) as base:
        result = runner.invoke(
            app,
            [
                "prepare",
                "davis2017",
                "--root",
                str(tmp_path / "d"),
                "--url",
                f"{base}/DAVIS-2017-trainval-480p.zip",
            ],
        )
    assert result.exit_code == 1 and "HTTP 404" in result.output
    assert not (tmp_path / "d").exists()


def test_downloaded_truncated_zip_is_refused_and_removed(tmp_path, trainval_zip):
    data = trainval_zip.read_bytes()[:-300]  # the server itself serves a damaged file
    files = {"/DAVIS-2017-trainval-480p.zip": ServedFile(data)}
    with http_server(files) as base:
        with pytest.raises(DownloadError, match="not a complete zip archive.*partial download was removed"):
            prepare_davis2017(
                tmp_path / "d", url=f"{base}/DAVIS-2017-trainval-480p.zip", download_dir=tmp_path / "dl"
            )
    assert not (tmp_path / "d").exists()
    assert list((tmp_path / "dl").iterdir()) == []  # neither the final name nor the .part stays


def test_cli_sha256_checks_a_local_archive_too(tmp_path, trainval_zip):
    import hashlib

    root = tmp_path / "davis"
    args = ["prepare", "davis2017", "--root", str(root), "--archive", str(trainval_zip), "--sha256"]
    result = runner.invoke(app, [*args, "0" * 64])
    assert result.exit_code == 1 and "sha256" in result.output and "does not match" in result.output
    assert not root.exists()
    result = runner.invoke(app, [*args, hashlib.sha256(trainval_zip.read_bytes()).hexdigest()])
    assert result.exit_code == 0, result.output


def test_cli_disk_full_writing_the_manifest_is_one_line(tmp_path, trainval_zip, monkeypatch):
    import errno

    from vosbench.data import prepare as prepare_mod

    def full(path, manifest):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(prepare_mod, "write_manifest", full)
    root = tmp_path / "davis"
    result = runner.invoke(app, ["prepare", "davis2017", "--root", str(root), "--archive", str(trainval_zip)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert lines == [f"error: {root / 'manifest.json'}: No space left on device"]
