"""Monocular depth estimators behind one small interface: frames in, relative depth out.

Convention (shared by every estimator and by :func:`vosbench.data.imageio.read_depth`):
``predict`` returns one ``H,W`` float32 map per frame, at the frame's size, in arbitrary
*relative* units where **larger = farther**. :func:`vosbench.depth.prepare.prepare_depth` then
maps each video to [0, 1] (0 = near, 1 = far) with one scale per video, and quantises to 16 bit;
``read_depth`` gives those [0, 1] values back.

Most monocular networks (Depth Anything V1/V2, DPT / MiDaS) predict *relative inverse depth*
(disparity: larger = nearer) with an unknown scale **and shift**, so ``1 / disparity`` is not a
depth (it blows up or turns negative where the shift dominates, e.g. on the sky). We therefore
*negate* disparity: the result is monotone in depth (larger = farther), stays finite, and keeps the
fine resolution near the camera where the objects to segment usually are. Models that predict
(metric) depth are passed through unchanged.
"""

from __future__ import annotations

import inspect
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, NamedTuple

import cv2
import numpy as np
from PIL import Image

from vosbench.data.imageio import _open_verified
from vosbench.errors import CheckpointError, ConfigError, DataError
from vosbench.precision import resolve_device

DepthKind = Literal["auto", "disparity", "depth"]
DEPTH_KINDS: tuple[str, ...] = ("auto", "disparity", "depth")
FOLDER_PREFIX = "folder:"
# transformers model types whose post-processed output is depth (larger = farther); every other
# depth-estimation model (DPT, Depth Anything relative, ...) predicts inverse depth.
_DEPTH_OUTPUT_MODEL_TYPES = frozenset({"glpn", "zoedepth", "depth_pro"})
INSTALL_HINT = "pip install -e '.[depth]'"


class FrameKey(NamedTuple):
    """Which frame a prediction is for: sequence name and frame stem (``00000``)."""

    sequence: str
    frame: str


class DepthEstimator(ABC):
    """Frames in, relative depth out (larger = farther; see the module docstring).

    ``batch_size`` is how many frames the caller should hand to one ``predict`` call.
    """

    batch_size: int = 1

    @abstractmethod
    def predict(self, frames: Sequence[np.ndarray], keys: Sequence[FrameKey] | None = None) -> list[np.ndarray]:
        """``frames``: ``H,W,3`` uint8 RGB; returns one ``H,W`` float32 map per frame, same size.

        ``keys`` name the frames; estimators that look maps up (folder import) require them.
        """

    @abstractmethod
    def describe(self) -> dict:
        """A small JSON-able description stored next to the maps (what made them)."""


def _to_depth(raw: np.ndarray, kind: str) -> np.ndarray:
    """Apply the larger = farther convention to a raw map of the given kind."""
    raw = raw.astype(np.float32, copy=False)
    return -raw if kind == "disparity" else raw


def _resize(depth: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an ``H,W`` float map to ``size`` = (height, width), bilinear (no overshoot)."""
    h, w = size
    if depth.shape == (h, w):
        return depth
    return cv2.resize(depth, (w, h), interpolation=cv2.INTER_LINEAR)


class TransformersDepthEstimator(DepthEstimator):
    """A Hugging Face ``transformers`` depth model (``AutoModelForDepthEstimation``).

    ``model`` is a local folder holding ``config.json``, weights and ``preprocessor_config.json``
    (what ``save_pretrained`` writes), or a hub id such as ``depth-anything/Depth-Anything-V2-Small-hf``
    (downloaded by transformers; needs internet once, then its cache). ``kind`` says what the model
    outputs: ``auto`` treats GLPN, ZoeDepth, Depth Pro and metric Depth Anything as depth and every
    other model (Depth Anything relative, DPT/MiDaS) as disparity.
    """

    def __init__(self, model: str, *, device: str = "auto", batch_size: int = 4, kind: DepthKind = "auto"):
        if batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {batch_size}")
        if kind not in DEPTH_KINDS:
            raise ConfigError(f"unknown depth kind {kind!r}; expected one of {', '.join(DEPTH_KINDS)}")
        try:
            import torch
            from transformers import AutoImageProcessor, AutoModelForDepthEstimation
        except ImportError as exc:
            raise ConfigError(f"depth models need the `transformers` package ({exc}); install it with {INSTALL_HINT}") from None

        self.batch_size = batch_size
        self.device = str(resolve_device(device))
        source = _model_source(model)
        self.model_ref = str(Path(source).resolve()) if Path(source).is_dir() else model
        try:
            try:  # a hub id already in the cache loads without touching the network
                self.processor = AutoImageProcessor.from_pretrained(source, local_files_only=True)
                self.model = AutoModelForDepthEstimation.from_pretrained(source, local_files_only=True)
            except OSError:
                if Path(source).is_dir():
                    raise
                self.processor = AutoImageProcessor.from_pretrained(source)
                self.model = AutoModelForDepthEstimation.from_pretrained(source)
        except Exception as exc:  # noqa: BLE001 - any failure to load user files (e.g. a truncated
            # .safetensors raises SafetensorError, mismatched weights RuntimeError) is one clear line
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if Path(source).is_dir():
                raise CheckpointError(f"{source}: cannot load depth model folder: {first}") from None
            raise CheckpointError(
                f"cannot load depth model {model!r} from the Hugging Face hub (needs internet or a cached copy; "
                f"offline, pass a folder written by save_pretrained): {first}"
            ) from None
        self.model.eval().to(self.device)
        config = self.model.config
        self.model_type = str(getattr(config, "model_type", "unknown"))
        if kind == "auto":
            metric = getattr(config, "depth_estimation_type", "relative") == "metric"
            kind = "depth" if metric or self.model_type in _DEPTH_OUTPUT_MODEL_TYPES else "disparity"
        self.kind = kind
        post = getattr(self.processor, "post_process_depth_estimation", None)
        self._post = post
        self._post_takes_source = post is not None and "source_sizes" in inspect.signature(post).parameters

    def describe(self) -> dict:
        return {
            "estimator": "transformers",
            "model": self.model_ref,
            "model_type": self.model_type,
            "output": self.kind,
            "converted": "negated (larger = farther)" if self.kind == "disparity" else "unchanged",
        }

    def predict(self, frames: Sequence[np.ndarray], keys: Sequence[FrameKey] | None = None) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for start in range(0, len(frames), self.batch_size):
            out.extend(self._predict_batch(frames[start : start + self.batch_size]))
        return out

    def _predict_batch(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        import torch

        sizes = [tuple(f.shape[:2]) for f in frames]
        inputs = self.processor(images=[np.require(f, requirements=["C", "W"]) for f in frames], return_tensors="pt")
        inputs = {k: v.to(self.device) if hasattr(v, "to") else v for k, v in inputs.items()}
        with torch.inference_mode():
            try:
                outputs = self.model(**inputs)
            except torch.OutOfMemoryError:
                raise ConfigError(f"depth model ran out of {self.device} memory on {len(frames)} frames of "
                                  f"{sizes[0][1]}x{sizes[0][0]}; lower --batch-size") from None
            if self._post is not None:
                kwargs = {"source_sizes": sizes} if self._post_takes_source else {}
                maps = [r["predicted_depth"] for r in self._post(outputs, target_sizes=sizes, **kwargs)]
            else:
                pred = outputs.predicted_depth  # B,h,w
                maps = [
                    torch.nn.functional.interpolate(p[None, None].float(), size=s, mode="bilinear", align_corners=False)[0, 0]
                    for p, s in zip(pred, sizes)
                ]
        result = []
        for m, s in zip(maps, sizes):
            arr = m.detach().float().cpu().numpy().reshape(s)  # H,W
            result.append(_to_depth(arr, self.kind))
        return result


def _looks_like_path(ref: str) -> bool:
    return ref.startswith(("/", ".", "~")) or "\\" in ref or ref.count("/") > 1


def _model_source(model: str) -> str:
    """A local folder (validated) or a hub id passed through to transformers."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise CheckpointError(f"{path}: not a transformers model folder (no config.json)")
        return str(path)
    if path.exists():
        raise CheckpointError(f"{path}: expected a model folder (config.json, weights, preprocessor_config.json), got a file")
    if _looks_like_path(model):
        raise CheckpointError(f"{path}: depth model folder not found")
    return model


class FolderDepthEstimator(DepthEstimator):
    """Imports depth maps computed elsewhere: ``ROOT/<seq>/<frame>.npy`` or ``.png`` (8/16-bit).

    ``kind`` says what the files hold: ``depth`` (larger = farther, the default) or ``disparity``
    (larger = nearer, e.g. saved Depth Anything or MiDaS output). Maps are resized to the frame
    size (bilinear); any per-file scale is irrelevant because prepare normalises per video.
    """

    batch_size = 8

    def __init__(self, root: str | Path, *, kind: DepthKind = "auto"):
        if kind not in DEPTH_KINDS:
            raise ConfigError(f"unknown depth kind {kind!r}; expected one of {', '.join(DEPTH_KINDS)}")
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise DataError(f"{self.root}: depth folder not found")
        self.kind = "depth" if kind == "auto" else kind

    def describe(self) -> dict:
        return {"estimator": "folder", "folder": str(self.root), "output": self.kind,
                "converted": "negated (larger = farther)" if self.kind == "disparity" else "unchanged"}

    def path_for(self, key: FrameKey) -> Path:
        """The file holding ``key``'s map (``.npy`` preferred over ``.png``); DataError if neither."""
        base = self.root / key.sequence / key.frame
        for suffix in (".npy", ".png"):
            p = base.with_suffix(suffix)
            if p.is_file():
                return p
        raise DataError(f"{base}.png: imported depth map missing (expected {base}.npy or {base}.png)")

    def predict(self, frames: Sequence[np.ndarray], keys: Sequence[FrameKey] | None = None) -> list[np.ndarray]:
        if keys is None or len(keys) != len(frames):
            raise ValueError("FolderDepthEstimator needs one FrameKey per frame")
        out = []
        for frame, key in zip(frames, keys):
            raw = read_depth_file(self.path_for(key))
            out.append(_to_depth(_resize(raw, frame.shape[:2]), self.kind))
        return out


def read_depth_file(path: Path) -> np.ndarray:
    """Read a user's depth map (``.npy``, or a single-channel 8/16-bit PNG) as raw ``H,W`` float32."""
    if path.suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise DataError(f"{path}: unreadable .npy depth map ({exc})") from None
        if not isinstance(arr, np.ndarray):  # an .npz archive saved under a .npy name
            raise DataError(f"{path}: not a .npy array (an .npz archive?); save one H,W array per frame")
        while arr.ndim > 2 and arr.shape[0] == 1:  # 1,H,W or 1,1,H,W
            arr = arr[0]
        if arr.ndim == 3 and arr.shape[-1] == 1:  # H,W,1
            arr = arr[..., 0]
        if arr.ndim != 2 or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise DataError(f"{path}: depth map must be a 2-D numeric array, got {arr.dtype} {arr.shape}")
    else:
        img: Image.Image = _open_verified(path)
        arr = np.asarray(img)
        if img.mode == "P":
            raise DataError(f"{path}: depth PNG is a palette image; expected grey 8/16-bit")
        if arr.ndim == 3:
            arr = arr[..., : 1 if img.mode == "LA" else 3]  # drop alpha
            if not np.all(arr == arr[..., :1]):
                raise DataError(f"{path}: depth PNG must be single-channel (grey 8/16-bit), got a colour ({img.mode}) image")
            arr = arr[..., 0]
    if arr.size == 0:
        raise DataError(f"{path}: depth map is empty (shape {arr.shape})")
    with np.errstate(over="ignore"):  # values beyond float32 become inf, reported just below
        arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{path}: depth map contains NaN or infinite values")
    return arr


def make_estimator(spec: str | os.PathLike, *, device: str = "auto", batch_size: int = 4, kind: DepthKind = "auto") -> DepthEstimator:
    """Build an estimator from ``--estimator``: ``folder:PATH``, a model folder, or a hub id."""
    spec = str(spec).strip()
    if not spec:
        raise ConfigError("empty --estimator; give a model folder, a hub id, or folder:PATH")
    if spec.startswith(FOLDER_PREFIX):
        path = spec[len(FOLDER_PREFIX):]
        if not path:
            raise ConfigError("--estimator folder: needs a path, e.g. folder:/data/my_depth")
        return FolderDepthEstimator(path, kind=kind)
    return TransformersDepthEstimator(spec, device=device, batch_size=batch_size, kind=kind)
