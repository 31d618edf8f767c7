"""Rasterise a :class:`~vosbench.data.synthetic.scene.VideoSpec` into frames, id masks and depth.

Objects are drawn far to near (z-order = depth order), so a nearer object hides a farther one in
the image, the mask and the depth map alike. Polygons are filled with OpenCV's integer
(fixed-point) rasteriser and textures mapped with its fixed-point bilinear warp; lighting, blur
and noise are applied to the image only.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vosbench.data.synthetic.scene import BACKGROUND_DEPTH, ObjectTrack, VideoSpec

_SHIFT = 4  # fillPoly fixed-point bits


@dataclass
class RenderedFrame:
    """One rendered frame plus per-object pixel statistics (index = position in spec.objects)."""

    image: np.ndarray | None  # H,W,3 uint8 (None when only masks were asked for)
    labels: np.ndarray  # H,W uint8 object ids (distractors and background are 0)
    depth: np.ndarray  # H,W float32 in [0,1], 0 = near
    instance: np.ndarray  # H,W int16, index into spec.objects, -1 = background
    in_frame: np.ndarray  # n_objects int64: pixels of the whole (unoccluded) object inside the frame
    visible: np.ndarray  # n_objects int64: pixels where the object is the front-most one


def _as3(m: np.ndarray) -> np.ndarray:
    return np.vstack([m, [0.0, 0.0, 1.0]])


def camera_matrix(spec: VideoSpec, t: int) -> np.ndarray:
    """2x3 affine from world coordinates to image pixels at frame ``t``."""
    z = float(spec.cam_zoom[t])
    sx, sy = float(spec.cam_shift[t, 0]), float(spec.cam_shift[t, 1])
    cx, cy = spec.width / 2.0, spec.height / 2.0
    return np.array([[z, 0.0, cx - z * (cx + sx)], [0.0, z, cy - z * (cy + sy)]])


def object_matrix(spec: VideoSpec, obj: ObjectTrack, t: int) -> np.ndarray:
    """2x3 affine from the object's unit coordinates to image pixels at frame ``t``."""
    k = obj.radius * float(obj.scale[t])
    a = float(obj.angle[t])
    c, s = np.cos(a) * k, np.sin(a) * k
    local = np.array([[c, -s, float(obj.x[t])], [s, c, float(obj.y[t])]])
    return (_as3(camera_matrix(spec, t)) @ _as3(local))[:2]


def object_centre(spec: VideoSpec, obj: ObjectTrack, t: int) -> tuple[float, float]:
    """Image coordinates (x, y) of the object's centre at frame ``t``."""
    m = camera_matrix(spec, t)
    x, y = float(obj.x[t]), float(obj.y[t])
    return m[0, 0] * x + m[0, 2], m[1, 1] * y + m[1, 2]


def background_depth(spec: VideoSpec, t: int) -> np.ndarray:
    """The background's depth at frame ``t``: a tilted plane in world coordinates."""
    h, w = spec.height, spec.width
    inv = cv2.invertAffineTransform(camera_matrix(spec, t))
    ys = np.arange(h, dtype=np.float64)
    xs = np.arange(w, dtype=np.float64)
    wy = inv[1, 1] * ys + inv[1, 2]  # world y of each image row
    wx = inv[0, 0] * xs + inv[0, 2]
    a, b, c = spec.background_depth
    d = a + b * (wy[:, None] / h) + c * (wx[None, :] / w - 0.5)
    return np.clip(d, *BACKGROUND_DEPTH).astype(np.float32)


def footprint(polygon: np.ndarray, matrix: np.ndarray, height: int, width: int
              ) -> tuple[int, int, np.ndarray] | None:
    """Rasterise a unit polygon under ``matrix`` (2x3, unit -> image) clipped to the frame.

    Returns ``(y0, x0, mask)`` with ``mask`` the bool pixels of the bounding box at (y0, x0), or
    None when the polygon lies wholly outside the frame.
    """
    verts = polygon @ matrix[:, :2].T + matrix[:, 2]
    x0 = max(0, int(np.floor(verts[:, 0].min())))
    y0 = max(0, int(np.floor(verts[:, 1].min())))
    x1 = min(width, int(np.ceil(verts[:, 0].max())) + 1)
    y1 = min(height, int(np.ceil(verts[:, 1].max())) + 1)
    if x1 <= x0 or y1 <= y0:
        return None
    mask = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    pts = np.round((verts - [x0, y0]) * (1 << _SHIFT)).astype(np.int32)
    cv2.fillPoly(mask, [pts], 1, lineType=cv2.LINE_8, shift=_SHIFT)
    region = mask.astype(bool)
    return (y0, x0, region) if region.any() else None


def render_frame(spec: VideoSpec, t: int, noise_rng: np.random.Generator | None = None, *,
                 with_image: bool = True) -> RenderedFrame:
    """Render frame ``t``. ``noise_rng`` draws the sensor noise (None = no noise)."""
    h, w = spec.height, spec.width
    cam = camera_matrix(spec, t)
    image = None
    if with_image:
        m = spec.margin
        bg_m = _as3(cam) @ np.array([[1.0, 0, -m], [0, 1.0, -m], [0, 0, 1.0]])
        image = cv2.warpAffine(spec.background, bg_m[:2], (w, h), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT)
    depth = background_depth(spec, t)
    instance = np.full((h, w), -1, dtype=np.int16)
    n_obj = len(spec.objects)
    in_frame = np.zeros(n_obj, dtype=np.int64)

    depths = np.array([o.depth[t] for o in spec.objects], dtype=np.float64)
    order = np.argsort(-depths, kind="stable")  # far first
    for idx in order:
        obj = spec.objects[int(idx)]
        app = spec.appearances[obj.appearance]
        a = object_matrix(spec, obj, t)
        fp = footprint(app.polygon, a, h, w)
        if fp is None:
            continue
        y0, x0, region = fp
        bh, bw = region.shape
        y1, x1 = y0 + bh, x0 + bw
        count = int(region.sum())
        in_frame[idx] = count
        instance[y0:y1, x0:x1][region] = idx
        depth[y0:y1, x0:x1][region] = np.float32(obj.depth[t])
        if image is not None:
            s = app.texture.shape[0]
            unit_from_tex = np.array([[2.0 / (s - 1), 0, -1.0], [0, 2.0 / (s - 1), -1.0], [0, 0, 1.0]])
            to_box = np.array([[1.0, 0, -x0], [0, 1.0, -y0], [0, 0, 1.0]])
            m_tex = (to_box @ _as3(a) @ unit_from_tex)[:2]
            warped = cv2.warpAffine(app.texture, m_tex, (bw, bh), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REFLECT)
            image[y0:y1, x0:x1][region] = warped[region]

    visible = np.bincount(instance.ravel().astype(np.int64) + 1, minlength=n_obj + 1)[1:]
    lut = np.zeros(n_obj + 1, dtype=np.uint8)
    lut[1:] = [o.obj_id for o in spec.objects]
    labels = lut[instance.astype(np.int64) + 1]
    if image is not None:
        image = _camera_effects(spec, t, image, noise_rng)
    return RenderedFrame(image=image, labels=labels, depth=depth, instance=instance,
                         in_frame=in_frame, visible=visible.astype(np.int64))


def _camera_effects(spec: VideoSpec, t: int, image: np.ndarray, noise_rng: np.random.Generator | None
                    ) -> np.ndarray:
    """Illumination (gain, tint, moving light gradient), blur and sensor noise."""
    h, w = spec.height, spec.width
    gx, gy = (float(v) for v in spec.light_gradient[t])
    ramp = (np.float32(1.0) + np.float32(gy) * (np.arange(h, dtype=np.float32)[:, None] / np.float32(h) - 0.5)
            + np.float32(gx) * (np.arange(w, dtype=np.float32)[None, :] / np.float32(w) - 0.5))
    colour = (spec.gain[t] * spec.tint[t]).astype(np.float32)
    mult = ramp[:, :, None] * colour  # H,W,3
    lit = cv2.multiply(image, mult, dtype=cv2.CV_8U)  # rounds and saturates
    if spec.blur_sigma >= 0.3:
        lit = cv2.GaussianBlur(lit, (0, 0), spec.blur_sigma)
    if noise_rng is None or spec.noise_sigma <= 0:
        return lit
    # sensor noise: a window of a noise field drawn once per video, at a random offset per frame
    field = _noise_field(spec, noise_rng)
    dy = int(noise_rng.integers(0, field.shape[0] - h + 1))
    dx = int(noise_rng.integers(0, field.shape[1] - w + 1))
    noisy = lit.astype(np.int16) + field[dy:dy + h, dx:dx + w]
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _noise_field(spec: VideoSpec, noise_rng: np.random.Generator) -> np.ndarray:
    """Integer Gaussian noise, (H+pad),(W+pad),3 int16, drawn on first use for this video."""
    if spec.noise_field is None:
        pad = 32
        shape = (spec.height + pad, spec.width + pad, 3)
        noise = noise_rng.standard_normal(shape, dtype=np.float32) * np.float32(spec.noise_sigma)
        spec.noise_field = np.round(noise).astype(np.int16)
    return spec.noise_field
