import numpy as np
import pytest
from PIL import Image

from vosbench.data.imageio import (
    DAVIS_PALETTE,
    encode_mask_png,
    has_davis_palette,
    read_depth,
    read_frame,
    read_mask,
    write_depth,
    write_mask,
)
from vosbench.errors import DataError

from ..conftest import REAL_SEQUENCES, REAL_VOS


def test_palette_matches_real_davis_annotation():
    png = REAL_VOS / REAL_SEQUENCES["blackswan"] / "Annotations/480p/blackswan/00000.png"
    with Image.open(png) as img:
        pal = np.array(img.getpalette(), dtype=np.uint8).reshape(-1, 3)
    n = len(pal)
    assert n == 256 and np.array_equal(pal, DAVIS_PALETTE)
    assert tuple(DAVIS_PALETTE[1]) == (128, 0, 0) and tuple(DAVIS_PALETTE[2]) == (0, 128, 0)


def test_mask_roundtrip_exact(tmp_path):
    rng = np.random.default_rng(1)
    m = rng.integers(0, 6, size=(31, 47)).astype(np.uint8)
    m[0, 0] = 255
    write_mask(tmp_path / "m.png", m)
    back = read_mask(tmp_path / "m.png")
    assert back.dtype == np.uint8 and np.array_equal(back, m)
    assert has_davis_palette(tmp_path / "m.png")
    assert not list(tmp_path.glob(".*tmp*")), "no temp file left behind"


def test_mask_encoding_is_deterministic():
    m = np.arange(12, dtype=np.uint8).reshape(3, 4) % 3
    assert encode_mask_png(m) == encode_mask_png(m.copy())


def test_rgb_mask_refused(tmp_path):
    Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(DataError, match="rgb.png.*RGB"):
        read_mask(tmp_path / "rgb.png")


def test_gray_mask_only_when_allowed(tmp_path):
    Image.fromarray(np.full((4, 5), 2, np.uint8)).save(tmp_path / "g.png")
    with pytest.raises(DataError, match="mode L"):
        read_mask(tmp_path / "g.png")
    assert read_mask(tmp_path / "g.png", allow_gray=True).max() == 2


def test_truncated_png_and_jpeg_raise(tmp_path):
    write_mask(tmp_path / "m.png", np.ones((40, 40), np.uint8))
    data = (tmp_path / "m.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="t.png"):
        read_mask(tmp_path / "t.png")
    jpg = REAL_VOS / REAL_SEQUENCES["dog"] / "JPEGImages/480p/dog/00000.jpg"
    (tmp_path / "t.jpg").write_bytes(jpg.read_bytes()[:2000])
    with pytest.raises(DataError, match="t.jpg"):
        read_frame(tmp_path / "t.jpg")


def test_depth_roundtrip_16bit(tmp_path):
    d = np.linspace(0, 1, 20 * 30).reshape(20, 30)
    write_depth(tmp_path / "d.png", d)
    with Image.open(tmp_path / "d.png") as img:
        assert np.asarray(img).dtype == np.uint16
    back = read_depth(tmp_path / "d.png")
    assert np.abs(back - d).max() <= 0.5 / 65535 + 1e-7


@pytest.mark.parametrize("data, why", [(b"", "empty file"), (b"GIF00 not an image", "not a recognised image")])
def test_unidentifiable_image_names_the_file_not_a_buffer(tmp_path, data, why):
    (tmp_path / "x.jpg").write_bytes(data)
    with pytest.raises(DataError) as err:
        read_frame(tmp_path / "x.jpg")
    msg = str(err.value)
    assert msg.startswith(f"{tmp_path / 'x.jpg'}: corrupt or truncated image") and why in msg
    assert "BytesIO" not in msg and "\n" not in msg
