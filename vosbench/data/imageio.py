"""Frame, palette-mask and depth-map I/O with validation.

Masks are palette PNGs (PIL mode ``P``) with the DAVIS palette: pixel value = object id, 0 is
background, 255 is void. Depth maps are single-channel 16-bit PNGs. Every reader raises
:class:`~vosbench.errors.DataError` with the file name on a corrupt, truncated or wrongly typed
file; every writer is atomic.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from vosbench.errors import DataError
from vosbench.fsutil import atomic_path, atomic_write_bytes, check_regular_file


def _davis_palette() -> np.ndarray:
    """The palette stored in the official DAVIS-2017 annotation PNGs.

    Entries 0..21 are the PASCAL-VOC colour map (built from the bits of the index) with its 192
    levels written as 191, as in the DAVIS files; entries 22..255 are grey levels (i, i, i).
    """
    pal = np.zeros((256, 3), dtype=np.uint8)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal[i] = (r, g, b)
    pal[pal == 192] = 191
    pal[22:] = np.arange(22, 256, dtype=np.uint8)[:, None]
    return pal


DAVIS_PALETTE: np.ndarray = _davis_palette()  # (256, 3) uint8, read-only
DAVIS_PALETTE.setflags(write=False)
DAVIS_PALETTE_FLAT: list[int] = DAVIS_PALETTE.reshape(-1).tolist()
VOID_ID = 255


def _open_verified(path: Path) -> Image.Image:
    """Open an image and force a full decode so truncation is caught here, not later."""
    check_regular_file(path, "image")
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return _decode_verified(data, str(path))


def _decode_verified(data: bytes, source: str) -> Image.Image:
    """Decode image bytes fully; ``source`` names the file in error messages."""
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except UnidentifiedImageError:  # its message names the BytesIO object, not the file
        kind = "empty file" if not data else "not a recognised image format"
        raise DataError(f"{source}: corrupt or truncated image ({kind})") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{source}: corrupt or truncated image ({exc})") from None
    return img


def read_frame(path: str | os.PathLike) -> np.ndarray:
    """Read an RGB frame as ``H,W,3`` uint8."""
    path = Path(path)
    img = _open_verified(path)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8)


def read_mask(path: str | os.PathLike, *, allow_gray: bool = False) -> np.ndarray:
    """Read an id mask as ``H,W`` uint8.

    Palette PNGs are read as their indices. With ``allow_gray`` (predictions), single-channel
    ``L`` PNGs are accepted too. RGB(A) masks are refused: their colours are not ids.
    """
    path = Path(path)
    return _mask_array(_open_verified(path), str(path), allow_gray)


def read_mask_bytes(data: bytes, source: str, *, allow_gray: bool = False) -> np.ndarray:
    """Like :func:`read_mask` for encoded bytes (e.g. a zip member); ``source`` names it in errors."""
    return _mask_array(_decode_verified(data, source), source, allow_gray)


def _mask_array(img: Image.Image, source: str, allow_gray: bool) -> np.ndarray:
    if img.mode == "P":
        return np.asarray(img, dtype=np.uint8)
    if img.mode == "L" and allow_gray:
        return np.asarray(img, dtype=np.uint8)
    if img.mode == "1" and allow_gray:  # 1-bit: set pixels are object 1 (not 255, as convert("L") gives)
        return np.asarray(img).astype(np.uint8)
    if img.mode in ("RGB", "RGBA"):
        raise DataError(f"{source}: mask is {img.mode} ({len(img.mode)} channels), expected a palette PNG of object ids")
    expected = "a palette, grey or 1-bit PNG of object ids" if allow_gray else "a palette (P) PNG of object ids"
    if img.mode.startswith("I"):  # I;16, I;16B, I: more than 8 bits per pixel
        raise DataError(f"{source}: mask is a 16-bit PNG (mode {img.mode}), expected {expected} (8 bits per pixel)")
    raise DataError(f"{source}: mask has mode {img.mode}, expected {expected}")


def encode_mask_png(mask: np.ndarray) -> bytes:
    """Encode an ``H,W`` id mask as a DAVIS-palette PNG (deterministic bytes)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    if mask.dtype != np.uint8:
        if mask.size and (mask.min() < 0 or mask.max() > 255):
            raise ValueError("mask ids must lie in 0..255")
        mask = mask.astype(np.uint8)
    mask = np.ascontiguousarray(mask)
    img = Image.frombytes("P", (mask.shape[1], mask.shape[0]), mask.tobytes())
    img.putpalette(DAVIS_PALETTE_FLAT)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def write_mask(path: str | os.PathLike, mask: np.ndarray) -> None:
    """Write an id mask as a DAVIS-palette PNG, atomically."""
    atomic_write_bytes(path, encode_mask_png(mask))


def write_frame(path: str | os.PathLike, frame: np.ndarray, quality: int = 90) -> None:
    """Write an ``H,W,3`` uint8 RGB frame as JPEG (or PNG, by suffix), atomically."""
    frame = np.asarray(frame, dtype=np.uint8)
    with atomic_path(path) as tmp:
        img = Image.fromarray(np.ascontiguousarray(frame))
        if Path(path).suffix.lower() in (".jpg", ".jpeg"):
            img.save(tmp, format="JPEG", quality=quality)
        else:
            img.save(tmp, format="PNG")


def read_depth(path: str | os.PathLike) -> np.ndarray:
    """Read a 16-bit depth PNG as ``H,W`` float32 in [0, 1] (0 = near, 1 = far)."""
    path = Path(path)
    img = _open_verified(path)
    arr = np.asarray(img)
    if arr.ndim != 2:
        raise DataError(f"{path}: depth map must be single-channel, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype in (np.uint16, np.int32, np.uint32, np.int16):
        return np.clip(arr.astype(np.float32) / 65535.0, 0.0, 1.0)
    raise DataError(f"{path}: unsupported depth dtype {arr.dtype}")


def write_depth(path: str | os.PathLike, depth: np.ndarray, compress_level: int = 6) -> None:
    """Write an ``H,W`` depth map with values in [0, 1] as a 16-bit PNG, atomically.

    ``compress_level`` (zlib, 0-9) trades file size for speed; the pixels are the same.
    """
    depth = np.asarray(depth, dtype=np.float64)
    if depth.ndim != 2:
        raise ValueError(f"depth must be 2-D, got shape {depth.shape}")
    q = np.round(np.clip(depth, 0.0, 1.0) * 65535.0).astype(np.uint16)
    with atomic_path(path) as tmp:
        Image.fromarray(q).save(tmp, format="PNG", compress_level=compress_level)


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(height, width) of an image file without decoding its pixels."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            w, h = img.size
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: corrupt or unreadable image ({exc})") from None
    return h, w


def has_davis_palette(path: str | os.PathLike) -> bool:
    """True if the PNG is mode P and its palette's used entries match the DAVIS palette."""
    with Image.open(path) as img:
        if img.mode != "P":
            return False
        pal = img.getpalette() or []
        n = len(pal) // 3
        return pal[: 3 * n] == DAVIS_PALETTE_FLAT[: 3 * n]
