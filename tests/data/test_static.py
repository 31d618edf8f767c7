import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from typer.testing import CliRunner

from vosbench_cli.main import app
from vosbench.data.imageio import has_davis_palette
from vosbench.data.static import StaticImageSet, prepare_static
from vosbench.errors import DataError

runner = CliRunner()
H, W = 30, 40


def jpg(h=H, w=W, value=90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), value, np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def png(arr: np.ndarray, mode: str = "L") -> bytes:
    """Encode ``arr`` as a grey (L), palette (P, a non-DAVIS palette) or RGB PNG."""
    if mode == "P":
        img = Image.frombytes("P", (arr.shape[1], arr.shape[0]), arr.astype(np.uint8).tobytes())
        img.putpalette([c for i in range(256) for c in (i, 255 - i, i // 2)])
    else:
        img = Image.fromarray(arr.astype(np.uint8), mode="L").convert(mode)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def write_zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def square(value=255, h=H, w=W):
    m = np.zeros((h, w), np.uint8)
    m[5:15, 10:25] = value
    return m


def msra_members():
    return {
        "MSRA10K_Imgs_GT/Imgs/101.jpg": jpg(),
        "MSRA10K_Imgs_GT/Imgs/101.png": png(square(255)),
        "MSRA10K_Imgs_GT/Imgs/102.jpg": jpg(value=150),
        "MSRA10K_Imgs_GT/Imgs/102.png": png(square(255)),
        "MSRA10K_Imgs_GT/Imgs/103.jpg": jpg(),  # no mask: skipped with a warning
    }


def test_msra10k(tmp_path):
    z = write_zip(tmp_path / "msra.zip", msra_members())
    manifest = prepare_static(tmp_path / "static", z, "msra10k")
    assert manifest["images"] == 2 and sorted(manifest["items"]) == ["101", "102"]
    ds = StaticImageSet(tmp_path / "static")
    assert len(ds) == 2
    m = ds.mask(0)
    assert m.shape == (H, W) and set(np.unique(m)) == {0, 1} and m[10, 20] == 1
    assert has_davis_palette(ds.mask_path(0))
    assert ds.image(1).shape == (H, W, 3)
    assert (tmp_path / "static/images/101.jpg").read_bytes() == msra_members()["MSRA10K_Imgs_GT/Imgs/101.jpg"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["msra.zip", "static"]


def test_voc_relabels_and_keeps_void(tmp_path):
    seg = np.zeros((H, W), np.uint8)
    seg[2:10, 2:10] = 1
    seg[12:20, 12:30] = 3
    seg[10, :] = 255
    z = write_zip(
        tmp_path / "voc.zip",
        {
            "VOCdevkit/VOC2012/JPEGImages/2007_000032.jpg": jpg(),
            "VOCdevkit/VOC2012/JPEGImages/2007_000033.jpg": jpg(),  # not in SegmentationObject: ignored
            "VOCdevkit/VOC2012/SegmentationObject/2007_000032.png": png(seg, "P"),
            "VOCdevkit/VOC2012/SegmentationClass/2007_000032.png": png(seg, "P"),
        },
    )
    manifest = prepare_static(tmp_path / "voc", z, "voc")
    assert manifest["items"] == {"2007_000032": {"height": H, "width": W, "object_ids": [1, 2]}}
    m = StaticImageSet(tmp_path / "voc").mask(0)
    assert m[5, 5] == 1 and m[15, 20] == 2 and m[10, 0] == 255


def coco_json(images, annotations):
    return json.dumps(
        {
            "images": images,
            "annotations": annotations,
            "categories": [{"id": 1, "name": "thing", "supercategory": "x"}],
        }
    ).encode()


def coco_members():
    crowd = np.zeros((H, W), np.uint8, order="F")
    crowd[25:30, 0:10] = 1
    rle = mask_utils.encode(np.asfortranarray(crowd))
    rle["counts"] = rle["counts"].decode()
    anns = [
        # a small box drawn on top of a large one: the small one must stay visible
        {
            "id": 1,
            "image_id": 7,
            "category_id": 1,
            "iscrowd": 0,
            "area": 300.0,
            "bbox": [0, 0, 30, 20],
            "segmentation": [[0, 0, 30, 0, 30, 20, 0, 20]],
        },
        {
            "id": 2,
            "image_id": 7,
            "category_id": 1,
            "iscrowd": 0,
            "area": 25.0,
            "bbox": [10, 5, 5, 5],
            "segmentation": [[10, 5, 15, 5, 15, 10, 10, 10]],
        },
        {
            "id": 3,
            "image_id": 7,
            "category_id": 1,
            "iscrowd": 1,
            "area": 50.0,
            "bbox": [0, 25, 10, 5],
            "segmentation": rle,
        },
    ]
    images = [
        {"id": 7, "file_name": "000000000007.jpg", "height": H, "width": W},
        {"id": 8, "file_name": "000000000008.jpg", "height": H, "width": W},
    ]  # no annotations: skipped
    return {
        "coco/annotations/instances_val2017.json": coco_json(images, anns),
        "coco/val2017/000000000007.jpg": jpg(),
        "coco/val2017/000000000008.jpg": jpg(),
    }


def test_coco_instances(tmp_path):
    z = write_zip(tmp_path / "coco.zip", coco_members())
    manifest = prepare_static(tmp_path / "coco", z, "coco")
    assert manifest["items"] == {"000000000007": {"height": H, "width": W, "object_ids": [1, 2]}}
    m = StaticImageSet(tmp_path / "coco").mask(0)
    assert m[2, 2] == 1 and m[7, 12] == 2 and m[27, 5] == 255 and m[27, 35] == 0


@pytest.mark.parametrize(
    "fmt, members, expected",
    [
        (
            "msra10k",
            {**msra_members(), "MSRA10K_Imgs_GT/Imgs/102.png": png(square(255, h=20))},
            r"msra\.zip:MSRA10K_Imgs_GT/Imgs/102\.png: mask size 40x20 differs from image size 40x30",
        ),
        (
            "msra10k",
            {**msra_members(), "MSRA10K_Imgs_GT/Imgs/101.jpg": jpg()[:200]},
            r"msra\.zip:MSRA10K_Imgs_GT/Imgs/101\.jpg: corrupt or truncated image",
        ),
        (
            "voc",
            {"V/JPEGImages/a.jpg": jpg(), "V/SegmentationObject/a.png": png(square(1), "RGB")},
            r"msra\.zip:V/SegmentationObject/a\.png: mask is RGB",
        ),
        (
            "voc",
            {"V/JPEGImages/a.jpg": jpg(), "V/SegmentationObject/b.png": png(square(1), "P")},
            r"V/JPEGImages/b\.jpg: image missing for b\.png",
        ),
        (
            "coco",
            {**coco_members(), "coco/annotations/instances_val2017.json": b"{broken"},
            r"instances_val2017\.json: not a COCO instances file",
        ),
        (
            "coco",
            {k: v for k, v in coco_members().items() if not k.endswith("07.jpg")},
            r"image 000000000007\.jpg is not in the archive",
        ),
        ("voc", msra_members(), r"no SegmentationObject/ folder"),
    ],
)
def test_bad_inputs_leave_nothing(tmp_path, fmt, members, expected):
    z = write_zip(tmp_path / "msra.zip", members)
    (tmp_path / "out").mkdir()
    with pytest.raises(DataError, match=expected):
        prepare_static(tmp_path / "out" / "static", z, fmt)
    assert list((tmp_path / "out").iterdir()) == []


def test_cli_static(tmp_path):
    z = write_zip(tmp_path / "msra.zip", msra_members())
    result = runner.invoke(
        app, ["prepare", "static", "--root", str(tmp_path / "s"), "--archive", str(z), "--format", "msra10k"]
    )
    assert result.exit_code == 0, result.output
    assert "msra10k" in result.output and (tmp_path / "s/masks/102.png").is_file()
    bad = write_zip(tmp_path / "bad.zip", {"../x.jpg": jpg()})
    result = runner.invoke(
        app,
        ["prepare", "static", "--root", str(tmp_path / "t"), "--archive", str(bad), "--format", "msra10k"],
    )
    assert result.exit_code == 1 and "points outside" in result.output and not (tmp_path / "t").exists()
    assert "Example" in runner.invoke(app, ["prepare", "static", "--help"]).output


def test_disk_full_while_writing_leaves_nothing(tmp_path, monkeypatch):
    import errno

    from vosbench.data import static as static_mod

    real = static_mod.shutil.copyfile
    calls = {"n": 0}

    def full_disk(src, dst):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real(src, dst)

    monkeypatch.setattr(static_mod.shutil, "copyfile", full_disk)
    z = write_zip(tmp_path / "msra.zip", msra_members())
    (tmp_path / "out").mkdir()
    with pytest.raises(DataError) as err:
        prepare_static(tmp_path / "out" / "static", z, "msra10k")
    assert str(err.value).startswith(f"{z}: cannot write") and "disk full" in str(err.value)
    assert "\n" not in str(err.value) and calls["n"] == 2
    assert list((tmp_path / "out").iterdir()) == []
