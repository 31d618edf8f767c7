"""`prepare sav`: SA-V tar (or zip) archives extracted safely, validated, merged into one root."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.infer.test_sav import write_sav
from vosbench_cli.main import app
from vosbench.data.prepare_sav import prepare_sav
from vosbench.errors import DataError

runner = CliRunner()


def _tree(tmp_path: Path, split: str = "val") -> Path:
    """``<tmp>/src/sav_<split>/`` as the official archive unpacks."""
    top = tmp_path / "src" / f"sav_{split}"
    write_sav(top)
    if split != "val":
        (top / "sav_val.txt").rename(top / f"sav_{split}.txt")
    return top


def _tar(top: Path, path: Path, extra=None) -> Path:
    with tarfile.open(path, "w") as tf:
        tf.add(top, arcname=top.name)
        for info, data in extra or ():
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def test_tar_and_zip_archives_merge_into_one_root(tmp_path):
    tar = _tar(_tree(tmp_path), tmp_path / "sav_val.tar")
    top = tmp_path / "src2" / "sav_test"
    write_sav(top)
    (top / "sav_val.txt").rename(top / "sav_test.txt")
    for d in ("JPEGImages_24fps", "Annotations_6fps"):
        (top / d / "v").rename(top / d / "w")
    (top / "sav_test.txt").write_text("w\n")
    zpath = tmp_path / "sav_test.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in sorted(top.rglob("*")):
            zf.write(p, p.relative_to(top.parent).as_posix())
    root = tmp_path / "root"
    manifest = prepare_sav(root, [tar, zpath])
    assert manifest["splits"] == {"test": ["w"], "val": ["v"]}
    assert manifest["sequences"]["v"] == {"frames": 9, "annotated_frames": 3, "height": 32, "width": 48,
                                          "object_ids": ["000", "001", "002"]}
    assert (root / "sav_val.txt").is_file() and (root / "Annotations_6fps" / "w" / "002" / "00008.png").is_file()
    assert json.loads((root / "manifest.json").read_text())["sources"] == [
        {"archive": "sav_val.tar", "splits": ["val"]}, {"archive": "sav_test.zip", "splits": ["test"]}]
    assert [p.name for p in tmp_path.iterdir() if "extracting" in p.name] == []


@pytest.mark.parametrize("name, kind", [("../evil.txt", "file"), ("sav_val/link", "symlink"), ("/abs.txt", "file")])
def test_unsafe_members_refuse_the_whole_archive(tmp_path, name, kind):
    info = tarfile.TarInfo(name)
    data = b"x"
    if kind == "symlink":
        info.type, info.linkname, data = tarfile.SYMTYPE, "/etc/passwd", None
    else:
        info.size = 1
    tar = _tar(_tree(tmp_path), tmp_path / "sav_val.tar", [(info, data)])
    with pytest.raises(DataError, match="refused"):
        prepare_sav(tmp_path / "root", [tar])
    assert not (tmp_path / "root").exists() and not (tmp_path / "evil.txt").exists()


def test_invalid_mask_in_the_archive_changes_nothing(tmp_path):
    top = _tree(tmp_path)
    bad = np.zeros((32, 48), np.uint8)
    bad[1, 1], bad[2, 2] = 1, 2
    Image.fromarray(bad, "L").save(top / "Annotations_6fps" / "v" / "001" / "00004.png")
    tar = _tar(top, tmp_path / "sav_val.tar")
    r = runner.invoke(app, ["prepare", "sav", "--root", str(tmp_path / "root"), "--archive", str(tar)])
    assert r.exit_code == 1
    assert "sav_val.tar:sav_val/Annotations_6fps/v/001/00004.png: holds values 1, 2" in r.output.replace("\n", "")
    assert not (tmp_path / "root").exists()


def test_truncated_tar_is_one_line(tmp_path):
    tar = _tar(_tree(tmp_path), tmp_path / "sav_val.tar")
    tar.write_bytes(tar.read_bytes()[:3000])
    r = runner.invoke(app, ["prepare", "sav", "--root", str(tmp_path / "root"), "--archive", str(tar)])
    assert r.exit_code == 1 and r.output.strip().startswith("error:") and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "root").exists()
