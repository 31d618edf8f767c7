"""Texture sources for backgrounds and objects: scikit-image sample images and procedural patterns.

Everything here is deterministic for a given ``numpy.random.Generator`` state: crops are numpy
slices, resizing uses OpenCV's bit-exact ``INTER_LINEAR_EXACT`` and procedural patterns are plain
float arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

# scikit-image sample images that ship inside the wheel (no download).
COLOUR_IMAGES = ("astronaut", "chelsea", "coffee", "rocket", "retina", "hubble_deep_field",
                 "immunohistochemistry", "colorwheel")
GRAY_IMAGES = ("brick", "grass", "gravel", "camera", "coins", "moon", "clock", "cell")
PATTERNS = ("noise", "stripes", "checker", "dots", "rings")


@dataclass
class TextureBank:
    """Loads sample images on first use and keeps them for the rest of one generation run."""

    _cache: dict[str, np.ndarray] = field(default_factory=dict)

    def image(self, name: str) -> np.ndarray:
        """A sample image as ``H,W,3`` uint8 (grey images are replicated to three channels)."""
        if name not in self._cache:
            import skimage.data

            img = np.asarray(getattr(skimage.data, name)())
            if img.dtype == bool:
                img = img.astype(np.uint8) * 255
            if img.ndim == 2:
                img = np.repeat(img[:, :, None], 3, axis=2)
            self._cache[name] = np.ascontiguousarray(img[:, :, :3].astype(np.uint8))
        return self._cache[name]


def resize_exact(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize ``img`` to ``(height, width)`` with OpenCV's bit-exact bilinear filter."""
    h, w = size
    if img.shape[:2] == (h, w):
        return img.copy()
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR_EXACT)


def random_colour(rng: np.random.Generator, lo: int = 30, hi: int = 235) -> np.ndarray:
    return rng.integers(lo, hi, size=3).astype(np.float32)


def value_noise(rng: np.random.Generator, size: tuple[int, int], cells: int, channels: int = 3) -> np.ndarray:
    """Smooth random field in [0, 1], ``H,W,channels`` float32: a coarse random grid, upsampled.

    The upsampling is smoothstep-weighted bilinear in plain element-wise numpy (bit-reproducible).
    """
    h, w = size
    gh = max(2, int(round(cells * h / max(h, w))) + 1)
    gw = max(2, int(round(cells * w / max(h, w))) + 1)
    grid = rng.random((gh, gw, channels)).astype(np.float32)

    def axis(n: int, g: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.arange(n, dtype=np.float32) * np.float32((g - 1) / max(1, n - 1))
        i0 = np.minimum(np.floor(pos).astype(np.int64), g - 2)
        f = pos - i0.astype(np.float32)
        f = f * f * (np.float32(3.0) - np.float32(2.0) * f)
        return i0, i0 + 1, f

    y0, y1, fy = axis(h, gh)
    x0, x1, fx = axis(w, gw)
    fy = fy[:, None, None]
    fx = fx[None, :, None]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x1] * fx
    bottom = grid[y1][:, x0] * (1 - fx) + grid[y1][:, x1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def _two_tone(field01: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
    f = field01[..., None] if field01.ndim == 2 else field01
    return f * c1 + (1.0 - f) * c2


def procedural_pattern(rng: np.random.Generator, kind: str, size: tuple[int, int]) -> np.ndarray:
    """A coloured procedural pattern, ``H,W,3`` uint8."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c1, c2 = random_colour(rng), random_colour(rng)
    period = float(rng.uniform(0.12, 0.35) * max(h, w))
    theta = float(rng.uniform(0, np.pi))
    u = xx * np.cos(theta) + yy * np.sin(theta)
    v = -xx * np.sin(theta) + yy * np.cos(theta)
    if kind == "noise":
        f = value_noise(rng, size, int(rng.integers(3, 9)), 1)[..., 0]
        f = np.clip((f - f.min()) / max(1e-6, float(f.max() - f.min())), 0, 1)
    elif kind == "stripes":
        f = 0.5 + 0.5 * np.sin(2 * np.pi * u / period)
    elif kind == "checker":
        f = ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
    elif kind == "dots":
        cu = (u / period) % 1.0 - 0.5
        cv_ = (v / period) % 1.0 - 0.5
        f = (cu * cu + cv_ * cv_ < 0.09).astype(np.float32)
    elif kind == "rings":
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        f = 0.5 + 0.5 * np.cos(2 * np.pi * np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2) / period)
    else:
        raise ValueError(f"unknown pattern {kind!r}")
    img = _two_tone(f.astype(np.float32), c1, c2)
    # a little grain so flat areas are not perfectly flat
    img = img + (value_noise(rng, size, 12, 3) - 0.5) * 30.0
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def sample_crop(rng: np.random.Generator, bank: TextureBank, name: str, size: tuple[int, int],
                zoom: tuple[float, float] = (0.3, 0.8)) -> np.ndarray:
    """A random crop of a sample image, resized to ``size``; grey images get a random tint."""
    src = bank.image(name)
    sh, sw = src.shape[:2]
    h, w = size
    frac = float(rng.uniform(*zoom))
    ch = max(8, int(round(min(sh, sw) * frac)))
    cw = max(8, min(sw, int(round(ch * w / h))))
    ch = min(sh, ch)
    y0 = int(rng.integers(0, sh - ch + 1))
    x0 = int(rng.integers(0, sw - cw + 1))
    crop = resize_exact(src[y0:y0 + ch, x0:x0 + cw], size).astype(np.float32)
    if name in GRAY_IMAGES:
        tint_a, tint_b = random_colour(rng, 20, 255) / 255.0, random_colour(rng, 0, 120)
        crop = crop * tint_a + tint_b * (1.0 - crop / 255.0)
    return np.clip(np.round(crop), 0, 255).astype(np.uint8)


def random_texture(rng: np.random.Generator, bank: TextureBank, size: tuple[int, int]) -> tuple[np.ndarray, str]:
    """An object or background texture and the name of its source."""
    r = rng.random()
    if r < 0.4:
        name = COLOUR_IMAGES[int(rng.integers(len(COLOUR_IMAGES)))]
        return sample_crop(rng, bank, name, size), name
    if r < 0.65:
        name = GRAY_IMAGES[int(rng.integers(len(GRAY_IMAGES)))]
        return sample_crop(rng, bank, name, size), name
    kind = PATTERNS[int(rng.integers(len(PATTERNS)))]
    return procedural_pattern(rng, kind, size), kind


def background_canvas(rng: np.random.Generator, bank: TextureBank, size: tuple[int, int]) -> tuple[np.ndarray, str]:
    """A background canvas: a sample-image crop blended with a coloured noise layer and clutter."""
    h, w = size
    name = (COLOUR_IMAGES + GRAY_IMAGES)[int(rng.integers(len(COLOUR_IMAGES) + len(GRAY_IMAGES)))]
    base = sample_crop(rng, bank, name, size, zoom=(0.6, 1.0)).astype(np.float32)
    tint = value_noise(rng, size, int(rng.integers(2, 6)), 3) * 255.0
    alpha = float(rng.uniform(0.15, 0.45))
    canvas = (1 - alpha) * base + alpha * tint
    return np.clip(np.round(canvas), 0, 255).astype(np.uint8), name
