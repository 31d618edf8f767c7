"""The scene model of one procedural video: objects, their paths, camera, lighting and depth.

A :class:`VideoSpec` holds every per-frame quantity as arrays (``T`` = number of frames), all drawn
from one ``numpy.random.Generator``; :mod:`vosbench.data.synthetic.render` turns it into pixels.
World coordinates are the pixel coordinates of frame 0 (the camera starts at identity).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from vosbench.data.synthetic.profiles import SyntheticProfile
from vosbench.data.synthetic.textures import TextureBank, background_canvas, random_texture

SHAPES = ("blob", "star", "ellipse", "rounded-rect", "polygon")
OBJECT_DEPTH = (0.06, 0.56)  # objects are always nearer than the background
BACKGROUND_DEPTH = (0.6, 1.0)
STEP = 0.12  # largest move between two path knots, as a share of the frame's width / height
MAX_SPEED = 0.02  # look-alikes' largest speed, share of the frame's larger side per frame


@dataclass
class Appearance:
    """Shape (a polygon in unit coordinates, inside [-1, 1]^2) and texture of an object."""

    shape: str
    polygon: np.ndarray  # N,2 float64
    texture: np.ndarray  # S,S,3 uint8
    texture_source: str

    @property
    def unit_area(self) -> float:
        x, y = self.polygon[:, 0], self.polygon[:, 1]
        return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


@dataclass
class ObjectTrack:
    """One object over time; ``obj_id`` 0 marks an unannotated distractor."""

    obj_id: int
    appearance: int  # index into VideoSpec.appearances
    radius: float  # pixels at scale 1
    x: np.ndarray  # T, world centre
    y: np.ndarray  # T
    scale: np.ndarray  # T
    angle: np.ndarray  # T, radians
    depth: np.ndarray  # T, in [0, 1], 0 = near
    group: int | None = None  # look-alike group index
    looks_like: int | None = None  # distractors: id of the annotated object they copy
    planned_exit: bool = False


@dataclass
class VideoSpec:
    """Everything needed to render one video, frame by frame."""

    name: str
    split: str
    height: int
    width: int
    n_frames: int
    appearances: list[Appearance]
    objects: list[ObjectTrack]
    background: np.ndarray  # canvas, (H+2m),(W+2m),3 uint8
    background_source: str
    margin: int
    background_depth: tuple[float, float, float]  # depth = a + b*y/H + c*x/W (world coords), clipped
    cam_shift: np.ndarray  # T,2 (dx, dy) world pixels
    cam_zoom: np.ndarray  # T
    gain: np.ndarray  # T
    tint: np.ndarray  # T,3
    light_gradient: np.ndarray  # T,2 (gx, gy)
    blur_sigma: float
    noise_sigma: float
    jpeg_quality: int
    groups: list[list[int]] = field(default_factory=list)  # look-alike groups as object ids
    noise_field: np.ndarray | None = None  # sensor noise, drawn by the renderer on first use

    @property
    def lookalike(self) -> bool:
        return bool(self.groups)

    @property
    def annotated(self) -> list[ObjectTrack]:
        return [o for o in self.objects if o.obj_id > 0]

    @property
    def distractors(self) -> list[ObjectTrack]:
        return [o for o in self.objects if o.obj_id == 0]


# --------------------------------------------------------------------------- smooth curves


def catmull_rom(knots: np.ndarray, n: int) -> np.ndarray:
    """Sample a uniform Catmull-Rom spline through ``knots`` (K,D) at ``n`` evenly spaced times.

    The curve passes through every knot (knot ``k`` at time ``k*(n-1)/(K-1)``) and is C1-smooth.
    """
    knots = np.asarray(knots, dtype=np.float64)
    if knots.ndim == 1:
        knots = knots[:, None]
    k = len(knots)
    if k == 1 or n == 1:
        return np.repeat(knots[:1], n, axis=0)
    pad = np.concatenate([2 * knots[:1] - knots[1:2], knots, 2 * knots[-1:] - knots[-2:-1]])
    t = np.arange(n, dtype=np.float64) * (k - 1) / max(1, n - 1)
    seg = np.minimum(np.floor(t).astype(np.int64), k - 2)
    s = (t - seg)[:, None]
    p0, p1, p2, p3 = pad[seg], pad[seg + 1], pad[seg + 2], pad[seg + 3]
    return 0.5 * ((2 * p1) + (-p0 + p2) * s + (2 * p0 - 5 * p1 + 4 * p2 - p3) * s**2
                  + (-p0 + 3 * p1 - 3 * p2 + p3) * s**3)


def smooth_curve(rng: np.random.Generator, n: int, knots: int, lo: float, hi: float,
                 start: float | None = None) -> np.ndarray:
    """A smooth random 1-D curve of length ``n`` whose knots lie in [lo, hi]."""
    vals = rng.uniform(lo, hi, size=knots)
    if start is not None:
        vals[0] = start
    return catmull_rom(vals, n)[:, 0]


def _n_knots(n_frames: int, per: int = 10) -> int:
    return int(min(9, max(3, n_frames // per + 2)))


# --------------------------------------------------------------------------- appearance


def random_shape(rng: np.random.Generator, n_vertices: int = 48) -> tuple[str, np.ndarray]:
    """A closed polygon in unit coordinates (max radius 1)."""
    kind = SHAPES[int(rng.integers(len(SHAPES)))]
    theta = np.linspace(0.0, 2 * np.pi, n_vertices, endpoint=False)
    if kind == "blob":
        r = np.ones_like(theta)
        for k in range(2, 6):
            r += rng.uniform(0, 0.28 / (k - 1)) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    elif kind == "star":
        points = int(rng.integers(4, 8))
        inner = rng.uniform(0.45, 0.7)
        r = inner + (1 - inner) * (0.5 + 0.5 * np.cos(points * theta)) ** 2
    elif kind == "ellipse":
        aspect = rng.uniform(0.45, 0.9)
        r = 1.0 / np.sqrt(np.cos(theta) ** 2 + (np.sin(theta) / aspect) ** 2)
    elif kind == "rounded-rect":
        aspect, p = rng.uniform(0.5, 0.95), rng.uniform(3.0, 6.0)
        c, s = np.abs(np.cos(theta)), np.abs(np.sin(theta)) / aspect
        r = 1.0 / (c**p + s**p) ** (1.0 / p)
    else:  # irregular convex-ish polygon
        n = int(rng.integers(5, 9))
        corners = np.sort(rng.uniform(0, 2 * np.pi, size=n))
        radii = rng.uniform(0.7, 1.0, size=n)
        xs, ys = radii * np.cos(corners), radii * np.sin(corners)
        poly = np.stack([xs, ys], axis=1)
        return kind, poly / np.abs(poly).max()
    pts = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
    return kind, pts / np.abs(r).max()


def random_appearance(rng: np.random.Generator, bank: TextureBank, texture_size: int) -> Appearance:
    shape, poly = random_shape(rng)
    tex, source = random_texture(rng, bank, (texture_size, texture_size))
    return Appearance(shape=shape, polygon=poly, texture=tex, texture_source=source)


# --------------------------------------------------------------------------- paths


def _random_path(rng: np.random.Generator, n: int, h: int, w: int, r: float, *, exit_out: float = 0.0
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Smooth path through random knots in the frame; with ``exit_out`` > 0 a middle stretch lies
    that far outside one border (the object leaves the frame and comes back)."""
    k = _n_knots(n, 12)
    lo_x, hi_x = min(r, w / 2), max(w - r, w / 2)
    lo_y, hi_y = min(r, h / 2), max(h - r, h / 2)
    # a random walk of knots: each knot a bounded step from the previous one
    steps = rng.uniform(-1.0, 1.0, size=(k, 2)) * [STEP * w, STEP * h]
    xs, ys = np.empty(k), np.empty(k)
    xs[0], ys[0] = rng.uniform(lo_x, hi_x), rng.uniform(lo_y, hi_y)
    for j in range(1, k):
        xs[j] = np.clip(xs[j - 1] + steps[j, 0], lo_x, hi_x)
        ys[j] = np.clip(ys[j - 1] + steps[j, 1], lo_y, hi_y)
    if exit_out > 0 and k >= 3:
        span = 1 if k < 6 else int(rng.integers(1, 3))
        j0 = int(rng.integers(1, k - span))
        side = int(rng.integers(4))
        for j in range(j0, j0 + span):
            if side == 0:
                xs[j] = -exit_out
            elif side == 1:
                xs[j] = w + exit_out
            elif side == 2:
                ys[j] = -exit_out
            else:
                ys[j] = h + exit_out
    pts = catmull_rom(np.stack([xs, ys], axis=1), n)
    return pts[:, 0], pts[:, 1]


def _crossing_paths(rng: np.random.Generator, n: int, h: int, w: int, r: float, members: int
                    ) -> tuple[list[tuple[np.ndarray, np.ndarray]], int]:
    """Paths of ``members`` look-alikes that all pass (close to) one point at one frame."""
    tc = int(round(rng.uniform(0.35, 0.6) * (n - 1)))
    tc = min(max(tc, 1), n - 1)
    cx, cy = rng.uniform(0.35 * w, 0.65 * w), rng.uniform(0.35 * h, 0.65 * h)
    theta0 = rng.uniform(0, 2 * np.pi)
    t = np.arange(n, dtype=np.float64) - tc
    paths = []
    for i in range(members):
        th = theta0 + i * np.pi / members + rng.uniform(-0.25, 0.25)
        dx, dy = math.cos(th), math.sin(th)
        # distance from the crossing point to the border when walking back to frame 0
        back = _ray_to_border(cx, cy, -dx, -dy, w, h) - 1.1 * r
        vmax = max(0.5, back / tc)
        v = rng.uniform(0.65, 1.0) * vmax
        v = min(v, MAX_SPEED * max(h, w))  # pixels per frame
        off = rng.uniform(-0.35, 0.35) * r
        wig_a, wig_p = rng.uniform(0, 0.12) * r, rng.uniform(0.6, 1.4) * n
        perp = off + wig_a * np.sin(2 * np.pi * t / wig_p)
        x = cx + v * t * dx - perp * dy
        y = cy + v * t * dy + perp * dx
        paths.append((x, y))
    return paths, tc


def _ray_to_border(x: float, y: float, dx: float, dy: float, w: int, h: int) -> float:
    ts = []
    if dx > 1e-9:
        ts.append((w - x) / dx)
    elif dx < -1e-9:
        ts.append(-x / dx)
    if dy > 1e-9:
        ts.append((h - y) / dy)
    elif dy < -1e-9:
        ts.append(-y / dy)
    return max(0.0, min(ts)) if ts else 0.0


# --------------------------------------------------------------------------- the video


def sample_video_spec(rng: np.random.Generator, profile: SyntheticProfile, bank: TextureBank, *,
                      name: str, split: str, n_frames: int, lookalike: bool) -> VideoSpec:
    """Draw one video's scene. The caller checks first-frame visibility and redraws if needed."""
    h, w = profile.size
    n = n_frames
    max_obj = max(1, profile.max_objects)
    lookalike = lookalike and max_obj >= 2
    weights = np.array([0.32, 0.3, 0.18, 0.12, 0.08][:max_obj], dtype=np.float64)
    if lookalike:
        weights[0] = 0.0
    weights /= weights.sum()
    n_obj = int(rng.choice(np.arange(1, max_obj + 1), p=weights))
    base = min(h, w)
    radius_range = (0.14, 0.3) if n_obj <= 2 else (0.1, 0.2)

    appearances: list[Appearance] = []
    objects: list[ObjectTrack] = []
    groups: list[list[int]] = []

    def scale_curve() -> np.ndarray:
        return np.exp(smooth_curve(rng, n, _n_knots(n), -0.2, 0.2, start=0.0))

    def angle_curve() -> np.ndarray:
        omega = rng.uniform(-0.025, 0.025)
        return rng.uniform(0, 2 * np.pi) + omega * np.arange(n) + smooth_curve(rng, n, _n_knots(n), -0.3, 0.3)

    next_id = 1
    if lookalike:
        members = 3 if (n_obj >= 3 and rng.random() < 0.3) else 2
        appearances.append(random_appearance(rng, bank, profile.texture_size))
        r = base * rng.uniform(*radius_range)
        sc, an = scale_curve(), angle_curve()
        paths, _ = _crossing_paths(rng, n, h, w, r, members)
        d0 = rng.uniform(OBJECT_DEPTH[0] + 0.02, 0.3)
        step = rng.uniform(0.08, 0.14)
        order = rng.permutation(members)
        ids = []
        for i, (x, y) in enumerate(paths):
            depth = d0 + order[i] * step + smooth_curve(rng, n, _n_knots(n), -0.02, 0.02)
            objects.append(ObjectTrack(obj_id=next_id, appearance=0, radius=r, x=x, y=y, scale=sc.copy(),
                                       angle=an.copy(), depth=np.clip(depth, *OBJECT_DEPTH), group=0))
            ids.append(next_id)
            next_id += 1
        groups.append(ids)

    while next_id <= n_obj:
        appearances.append(random_appearance(rng, bank, profile.texture_size))
        r = base * rng.uniform(*radius_range)
        will_exit = n >= 8 and rng.random() < 0.3
        x, y = _random_path(rng, n, h, w, r, exit_out=(1.6 * r + 0.08 * max(h, w)) if will_exit else 0.0)
        depth = smooth_curve(rng, n, _n_knots(n), OBJECT_DEPTH[0], OBJECT_DEPTH[1])
        objects.append(ObjectTrack(obj_id=next_id, appearance=len(appearances) - 1, radius=r, x=x, y=y,
                                   scale=scale_curve(), angle=angle_curve(), depth=np.clip(depth, *OBJECT_DEPTH),
                                   planned_exit=will_exit))
        next_id += 1

    # unannotated distractors that copy an annotated object's look (shape, texture, size)
    n_distract = 0
    if lookalike and rng.random() < 0.7:
        n_distract = int(rng.integers(1, 3))
    elif not lookalike and rng.random() < 0.2:
        n_distract = 1
    annotated = list(objects)
    for _ in range(n_distract):
        src = annotated[int(rng.integers(len(annotated)))]
        x, y = _random_path(rng, n, h, w, src.radius)
        depth = smooth_curve(rng, n, _n_knots(n), OBJECT_DEPTH[0], OBJECT_DEPTH[1])
        objects.append(ObjectTrack(obj_id=0, appearance=src.appearance, radius=src.radius, x=x, y=y,
                                   scale=src.scale.copy(), angle=angle_curve(),
                                   depth=np.clip(depth, *OBJECT_DEPTH), looks_like=src.obj_id))

    # camera, lighting, background, artefacts
    margin = int(math.ceil(0.14 * max(h, w)))
    bg, bg_source = background_canvas(rng, bank, (h + 2 * margin, w + 2 * margin))
    if rng.random() < 0.25:
        shift = np.zeros((n, 2))
        zoom = np.ones(n)
    else:
        ms = 0.05 * max(h, w)
        shift = np.stack([smooth_curve(rng, n, _n_knots(n, 15), -ms, ms, start=0.0),
                          smooth_curve(rng, n, _n_knots(n, 15), -ms, ms, start=0.0)], axis=1)
        zoom = np.exp(smooth_curve(rng, n, _n_knots(n, 15), -0.07, 0.12, start=0.0))
    gain = smooth_curve(rng, n, _n_knots(n, 12), 0.72, 1.2)
    tint = np.stack([smooth_curve(rng, n, _n_knots(n, 12), 0.92, 1.08) for _ in range(3)], axis=1)
    grad = np.stack([smooth_curve(rng, n, _n_knots(n, 12), -0.3, 0.3) for _ in range(2)], axis=1)
    far, near = rng.uniform(0.85, 1.0), rng.uniform(0.62, 0.8)
    bg_depth = (float(far), float(near - far), float(rng.uniform(-0.08, 0.08)))
    return VideoSpec(
        name=name, split=split, height=h, width=w, n_frames=n, appearances=appearances, objects=objects,
        background=bg, background_source=bg_source, margin=margin, background_depth=bg_depth,
        cam_shift=shift, cam_zoom=zoom, gain=gain, tint=tint, light_gradient=grad,
        blur_sigma=float(rng.choice([0.0, rng.uniform(0.4, 1.1)])), noise_sigma=float(rng.uniform(1.0, 4.0)),
        jpeg_quality=int(rng.integers(profile.jpeg_quality - 10, profile.jpeg_quality + 6)), groups=groups,
    )
