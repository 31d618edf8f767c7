"""A fast, exact decoder for the common case of id-mask PNGs, with PIL as the fallback.

Mask PNGs written by PIL (palette or grayscale, as DAVIS annotations and most VOS methods' outputs
are) are 8-bit, non-interlaced and use filter type 0 on every row, so decoding is one inflate
and a reshape. With zlib-ng the inflate is an order of magnitude faster than the stdlib zlib that
PIL uses, which makes decoding, the dominant cost of an evaluation, several times cheaper.

:func:`decode_id_png` returns None for anything outside that subset (other bit depths or colour
types, interlacing, other row filters, a CRC or length mismatch, a truncated stream, more pixel
data than the header's size), and the caller then decodes with
:func:`vosbench.data.imageio.read_mask_bytes`, which also produces the error message for a broken
file. Inflating stops one byte past the size the header announces, so a small crafted file can't
expand into gigabytes. For every file it accepts, the result equals PIL's.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np

from vosbench.data.imageio import read_mask, read_mask_bytes
from vosbench.fsutil import check_regular_file

try:  # much faster inflate; same stream format
    from zlib_ng import zlib_ng as _inflater
except ImportError:  # pragma: no cover - optional speed-up
    _inflater = zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_GRAY, _PALETTE = 0, 3


def decode_id_png(data: bytes, *, allow_gray: bool = False) -> np.ndarray | None:
    """``H,W`` uint8 pixel values of an 8-bit palette (or, with ``allow_gray``, grayscale) PNG.

    None when the file is not in the fast subset or is damaged in any way (the caller falls back
    to PIL, which decodes it or reports what is wrong).
    """
    if not data.startswith(PNG_SIGNATURE):
        return None
    view = memoryview(data)
    pos, end = 8, len(data)
    header = None
    idat: list[memoryview] = []
    seen_end = False
    while pos + 12 <= end:
        (length,) = struct.unpack_from(">I", data, pos)
        ctype = data[pos + 4 : pos + 8]
        stop = pos + 8 + length
        if stop + 4 > end:
            return None
        (crc,) = struct.unpack_from(">I", data, stop)
        if zlib.crc32(view[pos + 4 : stop]) != crc:
            return None
        if ctype == b"IHDR":
            if length != 13:
                return None
            header = struct.unpack_from(">IIBBBBB", data, pos + 8)
        elif ctype == b"IDAT":
            idat.append(view[pos + 8 : stop])
        elif ctype == b"IEND":
            seen_end = True
            break
        pos = stop + 4
    if header is None or not idat or not seen_end:
        return None
    width, height, depth, colour, compression, filter_method, interlace = header
    if depth != 8 or compression != 0 or filter_method != 0 or interlace != 0 or width == 0 or height == 0:
        return None
    if colour != _PALETTE and not (colour == _GRAY and allow_gray):
        return None
    expected = height * (width + 1)
    try:  # inflate at most one byte more than the header allows: a crafted stream can't blow up memory
        inflater = _inflater.decompressobj()
        raw = inflater.decompress(b"".join(idat), expected + 1)
    except Exception:  # noqa: BLE001 - any inflate failure: let PIL decide and report
        return None
    if len(raw) != expected or not inflater.eof:  # too long, too short, or no checked stream end
        return None
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, width + 1)
    if rows[:, 0].any():  # a row uses a filter other than None
        return None
    return np.ascontiguousarray(rows[:, 1:])


def decode_id_mask(data: bytes, source: str, *, allow_gray: bool = False) -> np.ndarray:
    """Decode mask bytes: the fast path when it applies, else PIL (errors name ``source``)."""
    fast = decode_id_png(data, allow_gray=allow_gray)
    return fast if fast is not None else read_mask_bytes(data, source, allow_gray=allow_gray)


def read_id_mask(path: str | os.PathLike, *, allow_gray: bool = False) -> np.ndarray:
    """:func:`~vosbench.data.imageio.read_mask` with the fast path (same values, same errors)."""
    check_regular_file(path, "mask")
    try:
        data = Path(path).read_bytes()
    except OSError:
        return read_mask(path, allow_gray=allow_gray)  # raises its one-line DataError
    return decode_id_mask(data, str(path), allow_gray=allow_gray)
