import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from vosbench.data.imageio import encode_mask_png, read_mask_bytes
from vosbench.errors import DataError
from vosbench.metrics.fastpng import decode_id_mask, decode_id_png, read_id_mask


def _png(arr: np.ndarray, mode: str | None = None, **save) -> bytes:
    img = Image.fromarray(arr) if mode is None else Image.fromarray(arr).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format="PNG", **save)
    return buf.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _unfiltered_gray_png(m: np.ndarray) -> bytes:
    """An 8-bit grayscale PNG with filter type 0 on every row (as many tools write masks)."""

    h, w = m.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), m], axis=1).tobytes()
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))


@pytest.mark.parametrize("seed", range(5))
def test_palette_and_gray_equal_pil(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(1, 60, size=2)
    m = rng.integers(0, 6, size=(h, w)).astype(np.uint8)
    m[rng.random((h, w)) < 0.05] = 255
    for data, gray in ((encode_mask_png(m), False), (_unfiltered_gray_png(m), True)):
        fast = decode_id_png(data, allow_gray=gray)
        assert fast is not None
        assert fast.dtype == np.uint8 and np.array_equal(fast, read_mask_bytes(data, "x", allow_gray=gray))
    # PIL writes grayscale with adaptive row filters: not the fast path, same values through PIL
    assert np.array_equal(decode_id_mask(_png(m), "x", allow_gray=True), m)


def test_palette_with_transparency_equals_pil():
    m = np.arange(48, dtype=np.uint8).reshape(6, 8) % 7
    img = Image.frombytes("P", (8, 6), m.tobytes())
    img.putpalette([i % 256 for i in range(768)])
    buf = io.BytesIO()
    img.save(buf, format="PNG", transparency=0)
    assert np.array_equal(decode_id_png(buf.getvalue()), m)


def test_outside_the_fast_subset_falls_back_to_pil():
    m = (np.arange(64, dtype=np.uint8).reshape(8, 8) % 3)
    assert decode_id_png(_unfiltered_gray_png(m), allow_gray=False) is None  # L needs allow_gray
    assert decode_id_png(_png(m.astype(bool))) is None  # 1-bit
    assert decode_id_png(_png(np.stack([m] * 3, -1))) is None  # RGB
    assert decode_id_png(_png(m.astype(np.uint16) * 300)) is None  # 16-bit
    assert decode_id_png(encode_mask_png(m)[:-20]) is None  # truncated
    ok, enc = cv2.imencode(".png", (m * 80).astype(np.uint8))  # libpng: adaptive row filters
    assert ok
    got = decode_id_mask(enc.tobytes(), "cv2.png", allow_gray=True)
    assert np.array_equal(got, (m * 80).astype(np.uint8))


def test_corruption_is_reported_like_read_mask(tmp_path):
    data = bytearray(encode_mask_png(np.eye(8, dtype=np.uint8)))
    data[40] ^= 0xFF  # inside IDAT: CRC mismatch
    assert decode_id_png(bytes(data)) is None
    p = tmp_path / "bad.png"
    p.write_bytes(bytes(data))
    with pytest.raises(DataError, match="bad.png"):
        read_id_mask(p)
    with pytest.raises(DataError, match="file not found"):
        read_id_mask(tmp_path / "missing.png")
    p.write_bytes(_png(np.zeros((4, 4, 3), np.uint8)))
    with pytest.raises(DataError, match="RGB"):
        read_id_mask(p, allow_gray=True)


def test_oversized_pixel_stream_is_not_inflated_whole():
    """A crafted 4x4 palette PNG whose IDAT inflates to 50 MB: the fast path stops at the header's
    size (returns None, no 50 MB buffer) and PIL, which reads only what the header needs, decodes it."""
    import tracemalloc

    data = (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 3, 0, 0, 0))
            + _chunk(b"PLTE", bytes(768)) + _chunk(b"IDAT", zlib.compress(bytes(50_000_000), 9)) + _chunk(b"IEND", b""))
    tracemalloc.start()
    try:
        assert decode_id_png(data) is None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000
    assert np.array_equal(decode_id_mask(data, "bomb.png"), np.zeros((4, 4), np.uint8))
