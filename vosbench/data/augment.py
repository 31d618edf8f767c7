"""Paired image / mask (/ depth) augmentations, numpy + OpenCV, deterministic for a given RNG.

Every geometric function takes an :class:`AugFrame` and returns a new one with the image, the id
mask and the optional depth map transformed identically (bilinear for the image and depth, nearest
for the mask, the same border value everywhere so nothing outside the source becomes foreground).
Random parameters are drawn from an explicit ``np.random.Generator`` so a clip is reproducible
from its seed. Used by the training datasets and by online finetuning (pseudo-frames).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from vosbench.padding import split_padding

BBox = tuple[int, int, int, int]  # y0, x0, y1, x1 (exclusive)


@dataclass(frozen=True)
class AugFrame:
    """One frame: ``image`` H,W,3 uint8 RGB; ``mask`` H,W uint8 ids; ``depth`` H,W float32 or None.

    ``prior`` (H,W uint8 ids or None): the mask of the frame before this one in the video (SCM's
    spatial prior during training); every geometric op transforms it exactly as ``mask``.
    """

    image: np.ndarray
    mask: np.ndarray
    depth: np.ndarray | None = None
    prior: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.image.shape[:2] != self.mask.shape:
            raise ValueError(f"image {self.image.shape[:2]} and mask {self.mask.shape} differ in size")
        if self.depth is not None and self.depth.shape != self.mask.shape:
            raise ValueError(f"depth {self.depth.shape} and mask {self.mask.shape} differ in size")
        if self.prior is not None and self.prior.shape != self.mask.shape:
            raise ValueError(f"prior {self.prior.shape} and mask {self.mask.shape} differ in size")

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return self.mask.shape  # type: ignore[return-value]


# --------------------------------------------------------------------------- geometric


def affine_matrix(
    rng: np.random.Generator,
    size: tuple[int, int],
    *,
    rotate: float = 0.0,
    scale: tuple[float, float] = (1.0, 1.0),
    shear: float = 0.0,
    translate: float = 0.0,
) -> np.ndarray:
    """A random 2x3 affine matrix about the image centre.

    ``rotate`` and ``shear`` are maximum absolute angles in degrees, ``scale`` a (min, max) range,
    ``translate`` a maximum shift as a fraction of the image size.
    """
    h, w = size
    angle = np.deg2rad(rng.uniform(-rotate, rotate)) if rotate else 0.0
    s = rng.uniform(scale[0], scale[1]) if scale[0] != scale[1] else scale[0]
    sh = np.deg2rad(rng.uniform(-shear, shear)) if shear else 0.0
    tx = rng.uniform(-translate, translate) * w if translate else 0.0
    ty = rng.uniform(-translate, translate) * h if translate else 0.0
    cos, sin = np.cos(angle), np.sin(angle)
    rot = np.array([[cos, -sin], [sin, cos]]) * s
    shear_m = np.array([[1.0, np.tan(sh)], [0.0, 1.0]])
    a = rot @ shear_m
    centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    t = centre - a @ centre + np.array([tx, ty])
    return np.concatenate([a, t[:, None]], axis=1).astype(np.float64)


def warp_affine(frame: AugFrame, matrix: np.ndarray, out_size: tuple[int, int] | None = None) -> AugFrame:
    """Apply a 2x3 affine matrix (source -> destination coordinates) to image, mask and depth."""
    h, w = out_size or frame.size
    kw = {"dsize": (w, h), "borderMode": cv2.BORDER_CONSTANT, "borderValue": 0}
    image = cv2.warpAffine(frame.image, matrix, flags=cv2.INTER_LINEAR, **kw)
    mask = cv2.warpAffine(frame.mask, matrix, flags=cv2.INTER_NEAREST, **kw)
    depth = None
    if frame.depth is not None:
        depth = cv2.warpAffine(frame.depth, matrix, flags=cv2.INTER_LINEAR, **kw)
    prior = None if frame.prior is None else cv2.warpAffine(frame.prior, matrix, flags=cv2.INTER_NEAREST, **kw)
    return AugFrame(image, mask, depth, prior)


def elastic_maps(
    rng: np.random.Generator, size: tuple[int, int], *, alpha: float, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """A smooth random displacement field for :func:`remap` (Simard et al. elastic deformation).

    ``alpha`` is the displacement magnitude in pixels, ``sigma`` the Gaussian smoothing in pixels.
    """
    h, w = size
    dx = rng.uniform(-1.0, 1.0, size=(h, w)).astype(np.float32)
    dy = rng.uniform(-1.0, 1.0, size=(h, w)).astype(np.float32)
    k = int(2 * round(3 * sigma) + 1)
    dx = cv2.GaussianBlur(dx, (k, k), sigma)
    dy = cv2.GaussianBlur(dy, (k, k), sigma)
    # normalise so alpha is the typical (max) displacement whatever sigma is
    norm = max(float(np.abs(dx).max()), float(np.abs(dy).max()), 1e-6)
    dx *= alpha / norm
    dy *= alpha / norm
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return xx + dx, yy + dy


def remap(frame: AugFrame, maps: tuple[np.ndarray, np.ndarray]) -> AugFrame:
    """Resample image, mask and depth through per-pixel source coordinates ``(map_x, map_y)``."""
    mx, my = maps
    kw = {"borderMode": cv2.BORDER_CONSTANT, "borderValue": 0}
    image = cv2.remap(frame.image, mx, my, cv2.INTER_LINEAR, **kw)
    mask = cv2.remap(frame.mask, mx, my, cv2.INTER_NEAREST, **kw)
    depth = cv2.remap(frame.depth, mx, my, cv2.INTER_LINEAR, **kw) if frame.depth is not None else None
    prior = cv2.remap(frame.prior, mx, my, cv2.INTER_NEAREST, **kw) if frame.prior is not None else None
    return AugFrame(image, mask, depth, prior)


def hflip(frame: AugFrame) -> AugFrame:
    """Mirror left-right."""
    depth = None if frame.depth is None else np.ascontiguousarray(frame.depth[:, ::-1])
    prior = None if frame.prior is None else np.ascontiguousarray(frame.prior[:, ::-1])
    return AugFrame(np.ascontiguousarray(frame.image[:, ::-1]), np.ascontiguousarray(frame.mask[:, ::-1]), depth,
                    prior)


def resize(frame: AugFrame, size: tuple[int, int]) -> AugFrame:
    """Resize to ``size`` = (height, width)."""
    h, w = size
    if (h, w) == frame.size:
        return frame
    shrink = h * w < frame.size[0] * frame.size[1]
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    image = cv2.resize(frame.image, (w, h), interpolation=interp)
    mask = cv2.resize(frame.mask, (w, h), interpolation=cv2.INTER_NEAREST)
    depth = None if frame.depth is None else cv2.resize(frame.depth, (w, h), interpolation=cv2.INTER_LINEAR)
    prior = None if frame.prior is None else cv2.resize(frame.prior, (w, h), interpolation=cv2.INTER_NEAREST)
    return AugFrame(image, mask, depth, prior)


def short_side_size(size: tuple[int, int], short: int) -> tuple[int, int]:
    """(height, width) with the shorter side equal to ``short``, aspect ratio kept."""
    h, w = size
    if h <= w:
        return short, max(1, round(w * short / h))
    return max(1, round(h * short / w)), short


def resize_short_side(frame: AugFrame, short: int) -> AugFrame:
    """Resize so the shorter side is ``short`` pixels."""
    return resize(frame, short_side_size(frame.size, short))


def union_bbox(masks: list[np.ndarray] | tuple[np.ndarray, ...]) -> BBox | None:
    """Bounding box (y0, x0, y1, x1) of all non-background, non-void pixels over the masks."""
    box: BBox | None = None
    for m in masks:
        fg = (m > 0) & (m < 255)
        if not fg.any():
            continue
        rows = np.flatnonzero(fg.any(axis=1))
        cols = np.flatnonzero(fg.any(axis=0))
        b = (int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
        box = b if box is None else (min(box[0], b[0]), min(box[1], b[1]), max(box[2], b[2]), max(box[3], b[3]))
    return box


def _window_start(rng: np.random.Generator, length: int, crop: int, lo: int, hi: int) -> int:
    """Start of a window of ``crop`` in [0, length) covering [lo, hi) if possible, else inside it.

    A window longer than the frame starts before it: the frame sits centred in the crop, padded as
    inference pads (:func:`vosbench.padding.split_padding`).
    """
    if length <= crop:
        return -split_padding(crop - length)[0]
    max_start = length - crop
    if hi - lo <= crop:
        a, b = max(0, hi - crop), min(lo, max_start)
    else:  # object wider than the window: keep the window inside the object's extent
        a, b = min(lo, max_start), min(hi - crop, max_start)
    if a > b:
        a, b = b, a
    return int(rng.integers(a, b + 1))


def random_crop_origin(
    rng: np.random.Generator, size: tuple[int, int], crop: tuple[int, int], bbox: BBox | None = None
) -> tuple[int, int]:
    """Top-left (y, x) of a ``crop`` = (h, w) window; around ``bbox`` when given (uniform otherwise).

    Where the frame is smaller than the crop the origin is negative and :func:`crop` pads.
    """
    h, w = size
    ch, cw = crop
    if bbox is None:
        bbox = (0, 0, h, w)
    y = _window_start(rng, h, ch, bbox[0], bbox[2])
    x = _window_start(rng, w, cw, bbox[1], bbox[3])
    return y, x


def crop(frame: AugFrame, origin: tuple[int, int], size: tuple[int, int]) -> AugFrame:
    """Crop ``size`` = (h, w) at ``origin`` = (y, x); zero-pads (black image, background mask, zero
    depth) where it leaves the frame, the padding values of :mod:`vosbench.padding`."""
    y, x = origin
    ch, cw = size
    h, w = frame.size
    if y >= 0 and x >= 0 and y + ch <= h and x + cw <= w:
        sl = (slice(y, y + ch), slice(x, x + cw))
        depth = None if frame.depth is None else frame.depth[sl].copy()
        prior = None if frame.prior is None else frame.prior[sl].copy()
        return AugFrame(frame.image[sl].copy(), frame.mask[sl].copy(), depth, prior)
    image = np.zeros((ch, cw, 3), frame.image.dtype)
    mask = np.zeros((ch, cw), frame.mask.dtype)
    depth = None if frame.depth is None else np.zeros((ch, cw), frame.depth.dtype)
    prior = None if frame.prior is None else np.zeros((ch, cw), frame.prior.dtype)
    sy0, sx0 = max(y, 0), max(x, 0)
    sy1, sx1 = min(y + ch, h), min(x + cw, w)
    if sy1 > sy0 and sx1 > sx0:
        dst = (slice(sy0 - y, sy1 - y), slice(sx0 - x, sx1 - x))
        src = (slice(sy0, sy1), slice(sx0, sx1))
        image[dst] = frame.image[src]
        mask[dst] = frame.mask[src]
        if depth is not None:
            depth[dst] = frame.depth[src]  # type: ignore[index]
        if prior is not None:
            prior[dst] = frame.prior[src]  # type: ignore[index]
    return AugFrame(image, mask, depth, prior)


# --------------------------------------------------------------------------- photometric


def color_jitter(
    image: np.ndarray,
    rng: np.random.Generator,
    *,
    brightness: float = 0.0,
    contrast: float = 0.0,
    saturation: float = 0.0,
    hue: float = 0.0,
) -> np.ndarray:
    """Random brightness/contrast/saturation (factors in [1-x, 1+x]) and hue shift (fraction of a turn)."""
    out = image.astype(np.float32)
    if brightness:
        out *= rng.uniform(1 - brightness, 1 + brightness)
    if contrast:
        mean = out.mean()
        out = (out - mean) * rng.uniform(1 - contrast, 1 + contrast) + mean
    if saturation:
        grey = out @ np.array([0.299, 0.587, 0.114], np.float32)
        out = (out - grey[..., None]) * rng.uniform(1 - saturation, 1 + saturation) + grey[..., None]
    out = np.clip(out, 0, 255).astype(np.uint8)
    if hue:
        hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV)
        shift = round(rng.uniform(-hue, hue) * 180)
        hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + shift) % 180).astype(np.uint8)
        out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return out


def with_image(frame: AugFrame, image: np.ndarray) -> AugFrame:
    """The same frame with another image (e.g. after :func:`color_jitter`)."""
    return replace(frame, image=image)


# --------------------------------------------------------------------------- composed


@dataclass(frozen=True)
class DeformParams:
    """Ranges of one random deformation: affine (+ optional elastic) warp, as :func:`random_deform` draws."""

    rotate: float = 15.0  # degrees, max absolute
    scale: tuple[float, float] = (0.9, 1.1)
    shear: float = 10.0  # degrees, max absolute
    translate: float = 0.05  # fraction of the size
    elastic_alpha: float = 0.0  # pixels; 0 = no elastic deformation
    elastic_sigma: float = 8.0  # pixels


def random_deform(rng: np.random.Generator, frame: AugFrame, params: DeformParams) -> AugFrame:
    """A random affine (and elastic, when ``params.elastic_alpha > 0``) deformation of a frame."""
    m = affine_matrix(
        rng, frame.size, rotate=params.rotate, scale=params.scale, shear=params.shear, translate=params.translate
    )
    out = warp_affine(frame, m)
    if params.elastic_alpha > 0:
        out = remap(out, elastic_maps(rng, out.size, alpha=params.elastic_alpha, sigma=params.elastic_sigma))
    return out


def pseudo_clip(
    rng: np.random.Generator, frame: AugFrame, n: int, params: DeformParams, *, keep_first: bool = True
) -> list[AugFrame]:
    """``n`` frames made from one annotated frame by independent random deformations.

    With ``keep_first`` the first frame is the input itself (the reference a memory is built from).
    Used for static-image pretraining and for online finetuning pseudo-frames.
    """
    frames = [frame] if keep_first else []
    while len(frames) < n:
        frames.append(random_deform(rng, frame, params))
    return frames
