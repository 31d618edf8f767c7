"""Per-video propagation engine: :class:`InferenceCore` (one per video, Cutie-style).

The network holds no video state; the engine owns it (:class:`EngineState`, including the
:class:`~vosbench.infer.memory.MemoryBank`) behind one call::

    core = InferenceCore(model, EngineConfig(mem_every=5))
    probs = core.step(frame0, mask=first_mask)   # K+1,H,W: background + one channel per object
    for frame in rest:
        probs = core.step(frame)

Schedule (STM's evaluation protocol): the first frame is always in memory, every ``mem_every``-th
frame is added, and the previous frame is read as temporary memory. Each frame is encoded once
by the query encoder; its memory encoding (all objects in one call, reusing the query features)
is computed lazily at the next step, so the last frame of a video is never memory-encoded.

Objects that first appear in a later frame (YouTube-VOS) join when their mask is given: they get
new object slots, and are read only against memory frames from the frame they joined on (their
memory for earlier frames is empty). Objects that joined at different frames are segmented in
separate ``segment`` calls whose per-object probabilities are merged by soft aggregation.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vosbench.data.imageio import VOID_ID
from vosbench.errors import ConfigError
from vosbench.infer.memory import MemoryBank
from vosbench.infer.options import DEFAULT_MAX_MEM_FRAMES
from vosbench.models.aggregate import soft_aggregate
from vosbench.models.fold import cast_weights, fold_backbones
from vosbench.precision import check_precision, resolve_numerics

if TYPE_CHECKING:
    from vosbench.precision import Numerics


@dataclass
class EngineConfig:
    """Schedule and numerics of one :class:`InferenceCore`."""

    mem_every: int = 5
    max_mem_frames: int = DEFAULT_MAX_MEM_FRAMES  # frames read at once, temporary frame included
    hard_prior: bool = True  # spatial prior = one-hot of the previous prediction (SCM: "0-1 mask")
    precision: str = "auto"  # vosbench.precision: auto | fp32 (no autocast) | bf16 | fp16
    channels_last: bool | None = None  # None: the precision rule's choice (on CUDA only; measured)
    # the run's device and precision, resolved once at its edge (infer_dataset); None: resolve
    # ``precision`` for the model's device (a library caller building an engine directly)
    numerics: Numerics | None = None
    # score each object on its own where the model can (hf: trackers: [1 - max_k p_k, p_1..p_K] with
    # p_k = sigmoid(logit_k), so objects may overlap), for layouts that hold overlaps (SA-V); the
    # STM family's objects compete by design and ignore it
    independent_objects: bool = False

    def numerics_on(self, device: torch.device) -> Numerics:
        """The numerics an engine on ``device`` runs with (the resolved ones when given)."""
        if self.numerics is not None:
            return self.numerics
        return resolve_numerics(device, self.precision, "infer")

    def validate(self) -> EngineConfig:
        if self.mem_every < 1:
            raise ConfigError(f"mem_every must be >= 1, got {self.mem_every}")
        if self.max_mem_frames < 2:
            raise ConfigError(f"max_mem_frames must be >= 2 (first + previous frame), got {self.max_mem_frames}")
        check_precision(self.precision)
        return self


@dataclass
class ObjectGroup:
    """Object slots ``[start, stop)`` that joined at frame ``joined``."""

    start: int
    stop: int
    joined: int


@dataclass
class PendingFrame:
    """The previous frame, kept until the next step memory-encodes it."""

    frame: int
    image: Tensor  # 1,3,H,W
    depth: Tensor | None  # 1,1,H,W
    query: Any
    probs: Tensor  # 1,K+1,H,W
    introduced: bool  # objects joined on this frame (its memory is protected from eviction)


@dataclass
class EngineState:
    """Everything the engine knows about the current video."""

    memory: MemoryBank
    frame: int = 0  # index of the next frame
    size: tuple[int, int] | None = None  # H,W of the video
    object_ids: list[int] = field(default_factory=list)
    groups: list[ObjectGroup] = field(default_factory=list)
    prev_probs: Tensor | None = None  # 1,K+1,H,W
    pending: PendingFrame | None = None


def model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def prepare_model(model: nn.Module, device: str | torch.device, config: EngineConfig | None = None) -> nn.Module:
    """Move ``model`` to ``device`` in eval mode (in the memory format its precision runs fastest in)."""
    config = config or EngineConfig()
    numerics = config.numerics_on(torch.device(device))
    model = model.eval().to(numerics.device)
    if numerics.channels_last if config.channels_last is None else config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def inference_model(model: nn.Module, config: EngineConfig | None = None) -> nn.Module:
    """The network the engine runs for ``model`` (already on its device, as :func:`prepare_model` left it).

    fp32 runs ``model`` itself, as trained (the reference numerics). bf16/fp16 run a copy with
    every backbone BatchNorm folded into the convolution before it and the convolution/linear
    weights stored in the compute dtype (``vosbench.models.fold``): same function up to rounding,
    one pass less over every trunk activation and no per-call weight casts under autocast
    (measured in benchmarks/infer_speed.py --real-data). ``model`` itself is left unchanged, so it
    can still be fine-tuned.
    """
    config = config or EngineConfig()
    numerics = config.numerics_on(model_device(model))
    if numerics.precision == "fp32":
        return model
    fast = copy.deepcopy(model).eval()
    fold_backbones(fast)
    return cast_weights(fast, numerics.dtype)


def model_flags(model: nn.Module) -> tuple[bool, bool]:
    """(spatial_prior, depth) from ``model.config``."""
    cfg = getattr(model, "config", None)
    return bool(getattr(cfg, "spatial_prior", False)), bool(getattr(cfg, "depth", False))


def mask_to_tensor(mask: np.ndarray | Tensor, device: torch.device) -> Tensor:
    """An ``H,W`` id mask (uint8 numpy or integer tensor) as a long tensor on ``device``."""
    if isinstance(mask, np.ndarray):
        mask = torch.from_numpy(np.array(mask))  # a writable copy
    return mask.to(device=device, dtype=torch.long)


def checked_frame(image: Tensor, size: tuple[int, int] | None, frame: int) -> Tensor:
    """``image`` as ``3,H,W`` (a leading batch of one dropped); ValueError unless it is an image of
    the video's ``size`` (None: the first frame)."""
    if image.dim() == 4:
        image = image[0]
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"expected an image 3,H,W, got {tuple(image.shape)}")
    h, w = image.shape[-2:]
    if size is not None and tuple(size) != (h, w):
        raise ValueError(f"frame {frame} is {w}x{h}, the video started at {size[1]}x{size[0]}")
    return image


def checked_mask(mask: Any, device: torch.device, size: tuple[int, int],
                 objects: Sequence[int] | None) -> tuple[Tensor, list[int]]:
    """A given mask as an ``H,W`` id tensor on ``device`` and the objects it introduces (``objects``,
    or every id in it); ValueError unless it has the frame's ``size``."""
    given = mask_to_tensor(mask, device)
    h, w = size
    if tuple(given.shape) != (h, w):
        raise ValueError(f"mask is {given.shape[1]}x{given.shape[0]}, frame is {w}x{h}")
    return given, (object_ids_in(given) if objects is None else [int(o) for o in objects])


def object_ids_in(mask: Tensor) -> list[int]:
    ids = torch.unique(mask).tolist()
    return [int(i) for i in ids if i not in (0, VOID_ID)]


class InferenceCore:
    """Propagates masks through one video with a memory-based VOS model.

    ``step`` takes frames in order; call :meth:`reset` (or make a new core) for the next video.
    """

    def __init__(self, model: nn.Module, config: EngineConfig | None = None):
        self.model = model
        self.config = (config or EngineConfig()).validate()
        self.device = model_device(model)
        self.numerics = self.config.numerics_on(self.device)
        cl = self.config.channels_last
        self.channels_last = self.numerics.channels_last if cl is None else cl
        self.spatial_prior, self.needs_depth = model_flags(model)
        self.state = EngineState(memory=self._new_memory())

    # ---- public -----------------------------------------------------------------------------
    @property
    def object_ids(self) -> list[int]:
        """Object ids in channel order (channel ``i+1`` of ``step``'s output is ``object_ids[i]``)."""
        return list(self.state.object_ids)

    @property
    def memory(self) -> MemoryBank:
        return self.state.memory

    def reset(self) -> None:
        """Forget the video (memory, objects, previous prediction)."""
        self.state = EngineState(memory=self._new_memory())

    @torch.inference_mode()
    def step(
        self,
        image: Tensor,
        mask: np.ndarray | Tensor | None = None,
        objects: Sequence[int] | None = None,
        depth: Tensor | None = None,
    ) -> Tensor:
        """Segment the next frame.

        ``image``: 3,H,W float in [0,1]. ``mask``: H,W ids giving the ground truth of
        ``objects`` (default: every id in the mask) on this frame; ids not seen before join as
        new objects. ``depth``: H,W or 1,H,W in [0,1], required by depth models.
        Returns float32 probabilities ``K+1,H,W`` (channel 0 = background) on the engine's device.
        """
        st = self.state
        image = checked_frame(image, st.size, st.frame)
        h, w = image.shape[-2:]
        st.size = (h, w)
        if self.needs_depth and depth is None:
            raise ConfigError("this model takes depth (D-STM) but no depth map was given for the frame")

        # Frames go to the model at their own size: the model pads (vosbench.padding, STM's rule),
        # so memorised masks are zero outside the frame and outputs come back at H,W.
        img = image.to(self.device, torch.float32)[None]
        if self.channels_last:
            img = img.contiguous(memory_format=torch.channels_last)
        dep = None
        if self.needs_depth:
            dep = depth.to(self.device, torch.float32).reshape(1, 1, h, w)

        new_ids: list[int] = []
        given = None
        if mask is not None:
            given, objects = checked_mask(mask, self.device, (h, w), objects)
            new_ids = [o for o in objects if o not in st.object_ids]

        with self.numerics.autocast():
            self._flush_pending()
            query = None
            if st.object_ids:  # a frame whose objects all arrive with it (frame 0) has nothing to segment
                query = self.model.encode_query(img, depth=dep)
            probs = self._predict(query, img.shape[-2:])
        if given is not None:
            probs = self._apply_mask(probs, given, objects, new_ids)

        st.prev_probs = probs
        if st.object_ids:
            st.pending = PendingFrame(st.frame, img, dep, query, probs, introduced=bool(new_ids))
        st.frame += 1
        return probs[0]

    # ---- internals --------------------------------------------------------------------------
    def _new_memory(self) -> MemoryBank:
        """An empty bank storing keys and values in the compute dtype."""
        return MemoryBank(self.config.max_mem_frames, dtype=self.numerics.dtype)

    def _flush_pending(self) -> None:
        """Memory-encode the previous frame (all objects at once) and store it."""
        st = self.state
        p = st.pending
        if p is None:
            return
        st.pending = None
        mem = self.model.encode_memory(p.image, p.probs[:, 1:], depth=p.depth, query=p.query)
        permanent = p.introduced or p.frame % self.config.mem_every == 0
        st.memory.add(mem.key, mem.value, p.frame, permanent=permanent, protected=p.introduced)

    def _prior(self, a: int, b: int) -> Tensor | None:
        if not self.spatial_prior:
            return None
        prev = self.state.prev_probs
        if self.config.hard_prior:
            hard = F.one_hot(prev.argmax(1), prev.shape[1]).permute(0, 3, 1, 2).to(prev.dtype)
            return hard[:, 1 + a : 1 + b]
        return prev[:, 1 + a : 1 + b]

    def _predict(self, query: Any, size: tuple[int, int]) -> Tensor:
        """Probabilities 1,K+1,H,W of the known objects (background only when there are none)."""
        st = self.state
        k = len(st.object_ids)
        if k == 0:
            return torch.ones(1, 1, *size, device=self.device)
        groups = [g for g in st.groups if st.memory.has_frames_since(g.joined)]
        outputs = []
        for g in groups:
            keys, values = st.memory.read(slice(g.start, g.stop), since=g.joined)
            out = self.model.segment(query, keys, values, prev_mask=self._prior(g.start, g.stop))
            outputs.append((g, out.probs.float()))
        if len(outputs) == 1 and outputs[0][0].start == 0 and outputs[0][0].stop == k:
            return outputs[0][1]
        fg = torch.zeros(1, k, *size, device=self.device)
        for g, p in outputs:
            fg[:, g.start : g.stop] = p[:, 1:]
        return torch.softmax(soft_aggregate(fg), dim=1)

    def _apply_mask(self, probs: Tensor, mask: Tensor, objects: Sequence[int], new_ids: list[int]) -> Tensor:
        """Overwrite the given objects with their ground truth; add channels for new objects."""
        st = self.state
        if new_ids:
            start = len(st.object_ids)
            st.object_ids.extend(new_ids)
            st.groups.append(ObjectGroup(start, len(st.object_ids), st.frame))
            extra = probs.new_zeros(1, len(new_ids), *probs.shape[-2:])
            probs = torch.cat([probs, extra], dim=1)
        return paste_ground_truth(probs, mask, objects, st.object_ids)


def new_core(model: nn.Module, config: EngineConfig | None = None, frames: int | None = None) -> InferenceCore:
    """The per-video core for ``model``: its own when it has one (``model.video_core(config, frames)``,
    e.g. an ``hf:`` member, :mod:`vosbench.infer.hf_video`), else an :class:`InferenceCore`.
    ``frames``: the video's length when known (SAM 2's loop reads it)."""
    make = getattr(model, "video_core", None)
    return make(config, frames) if make is not None else InferenceCore(model, config)


def paste_ground_truth(probs: Tensor, mask: Tensor, objects: Sequence[int], object_ids: Sequence[int]) -> Tensor:
    """``probs`` 1,K+1,H,W with ``objects`` set to their ground truth in ``mask`` (H,W ids).

    Where a given object's mask is on, the other objects' probabilities are zeroed; elsewhere
    the prediction is kept. Channel ``i+1`` belongs to ``object_ids[i]``.
    """
    fg = probs[:, 1:].clone()
    given = torch.zeros(probs.shape[-2:], dtype=torch.bool, device=probs.device)
    for obj in objects:
        given |= mask == obj
    fg *= (~given).to(fg.dtype)
    ids = list(object_ids)
    for obj in objects:
        fg[0, ids.index(obj)] = (mask == obj).to(fg.dtype)
    bg = (1 - fg.sum(1, keepdim=True)).clamp_min(0)
    return torch.cat([bg, fg], dim=1)

