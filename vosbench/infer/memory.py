"""The space-time memory of one video: keys and values of past frames, bounded in size.

Layout: one buffer per tensor, ``1,K,C,T,h,w`` (the layout ``VOSModel.segment`` reads), so a
frame's key/value is written once when it is memorised and reading the memory is a view, not a
concatenation. In memory the channels are last (``1,K,T,h,w,C``; the ``C,T,h,w`` tensors are views):
the memory read's attention needs each position's channels contiguous, and gets them at no cost
(vosbench.models.memory). Buffers grow by doubling up to ``capacity`` slots and never beyond. Slots ``[0, n)`` hold the *permanent* memory frames (the first frame,
frames that introduced objects, and every ``mem_every``-th frame); slot ``n`` holds the
*temporary* memory (the previous frame) when it is not itself permanent.

Eviction (``capacity`` = the most frames ever read at once, temporary slot included): when a
permanent frame arrives and the permanent slots are full, the oldest *unprotected* permanent
frame is overwritten. Protected frames are the ones that carry a ground-truth mask (the first
frame, frames where objects joined). When every permanent frame is protected, the oldest one
other than the very first is evicted; with ``capacity == 2`` only the first frame and the
previous frame are read. The order of frames along ``T`` does not matter to the memory read
(a softmax over all positions), so slots are reused in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


def _channels_last_zeros(like: Tensor, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
    """Zeros of logical ``shape`` B,K,C,T,h,w stored as B,K,T,h,w,C."""
    b, k, c, t, h, w = shape
    return like.new_zeros(b, k, t, h, w, c, dtype=dtype).permute(0, 1, 5, 2, 3, 4)


def _select_frames(t: Tensor, index: Tensor) -> Tensor:
    """Frames ``index`` of a B,K,C,T,h,w view, keeping the channels-last storage."""
    return t.permute(0, 1, 3, 4, 5, 2).index_select(2, index).permute(0, 1, 5, 2, 3, 4)


@dataclass
class MemorySlot:
    """What a permanent slot holds: the frame index and whether it may be evicted."""

    frame: int
    protected: bool


@dataclass
class MemoryBank:
    """Bounded key/value memory of one video (see the module docstring for the policy)."""

    capacity: int
    dtype: torch.dtype | None = None  # storage dtype (the compute precision); None = the first key's
    keys: Tensor | None = None  # 1,K,Ck,capacity,h,w
    values: Tensor | None = None  # 1,K,Cv,capacity,h,w
    slots: list[MemorySlot] = field(default_factory=list)  # permanent slots, in slot order
    temp_frame: int | None = None  # frame in slot len(slots), if any
    evictions: int = 0

    def __post_init__(self) -> None:
        if self.capacity < 2:
            raise ValueError(f"memory capacity must be >= 2 (first + previous frame), got {self.capacity}")

    # ---- inspection -------------------------------------------------------------------------
    @property
    def num_objects(self) -> int:
        return 0 if self.keys is None else self.keys.shape[1]

    @property
    def num_frames(self) -> int:
        """Frames currently held (permanent + temporary)."""
        return len(self.slots) + (self.temp_frame is not None)

    @property
    def frames(self) -> list[int]:
        """Frame indices held, in slot order (temporary last)."""
        out = [s.frame for s in self.slots]
        if self.temp_frame is not None:
            out.append(self.temp_frame)
        return out

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.keys, self.values) if t is not None)

    def reset(self) -> None:
        self.keys = self.values = None
        self.slots = []
        self.temp_frame = None
        self.evictions = 0

    # ---- writing ----------------------------------------------------------------------------
    def _allocate(self, key: Tensor, value: Tensor, frames: int) -> None:
        """(Re)allocate buffers for ``key``'s object count and ``frames`` slots, keeping what is stored."""
        _, k, ck, h, w = key.shape
        cv = value.shape[2]
        new_k = _channels_last_zeros(key, (1, k, ck, frames, h, w), self.dtype or key.dtype)
        new_v = _channels_last_zeros(value, (1, k, cv, frames, h, w), self.dtype or value.dtype)
        if self.keys is not None:
            old_k, old_t = self.keys.shape[1], self.keys.shape[3]
            if self.keys.shape[2] != ck or self.keys.shape[4:] != (h, w) or self.values.shape[2] != cv:
                raise ValueError(
                    f"memory shape changed within a video: {tuple(self.keys.shape)} -> {tuple(new_k.shape)}"
                )
            new_k[:, :old_k, :, :old_t] = self.keys
            new_v[:, :old_k, :, :old_t] = self.values
        self.keys, self.values = new_k, new_v

    def _evict_slot(self) -> int | None:
        """Index of the permanent slot to overwrite, or None when the frame cannot be kept."""
        candidates = [i for i, s in enumerate(self.slots) if not s.protected]
        if not candidates:
            candidates = [i for i, s in enumerate(self.slots) if i > 0]
        if not candidates:
            return None
        return min(candidates, key=lambda i: self.slots[i].frame)

    def add(self, key: Tensor, value: Tensor, frame: int, *, permanent: bool, protected: bool = False) -> None:
        """Memorise ``frame``: ``key`` 1,K,Ck,h,w and ``value`` 1,K,Cv,h,w.

        A permanent frame joins the long-term slots (evicting if full); any other frame replaces
        the temporary slot. Either way the previous temporary frame is dropped: the newest frame
        is now the "previous frame".
        """
        if key.dim() != 5 or value.dim() != 5 or key.shape[1] != value.shape[1]:
            raise ValueError(f"expected key 1,K,Ck,h,w and value 1,K,Cv,h,w, got {tuple(key.shape)}, {tuple(value.shape)}")
        if self.keys is not None and key.shape[1] < self.keys.shape[1]:
            raise ValueError("the number of objects in memory cannot shrink")
        # buffers grow by doubling up to the capacity (so an uncapped bank is not preallocated)
        held = 0 if self.keys is None else self.keys.shape[3]
        need = min(self.capacity, len(self.slots) + 1)
        frames = held if need <= held else min(self.capacity, max(need, 2 * held, 8))
        if self.keys is None or key.shape[1] != self.keys.shape[1] or frames != held:
            self._allocate(key, value, frames)
        self.temp_frame = None
        slot: int | None
        if permanent:
            if len(self.slots) < self.capacity - 1:
                slot = len(self.slots)
                self.slots.append(MemorySlot(frame, protected))
            else:
                slot = self._evict_slot()
                if slot is not None:
                    self.slots[slot] = MemorySlot(frame, protected)
                    self.evictions += 1
            if slot is not None:
                self._write(slot, key, value)
                return
        # temporary: the slot right after the permanent ones (always free: permanent <= capacity-1)
        self.temp_frame = frame
        self._write(len(self.slots), key, value)

    def _write(self, slot: int, key: Tensor, value: Tensor) -> None:
        self.keys[:, :, :, slot] = key.to(self.keys.dtype)
        self.values[:, :, :, slot] = value.to(self.values.dtype)

    # ---- reading ----------------------------------------------------------------------------
    def read(self, objects: slice | None = None, since: int = 0) -> tuple[Tensor, Tensor]:
        """Keys ``1,K',Ck,T,h,w`` and values ``1,K',Cv,T,h,w`` of frames ``>= since``.

        ``objects`` selects a contiguous range of object slots. When every held frame qualifies
        (the usual case) the result is a view of the buffers, no copy.
        """
        if self.keys is None or self.num_frames == 0:
            raise RuntimeError("memory is empty")
        objects = objects or slice(None)
        frames = self.frames
        keys = self.keys[:, objects]
        values = self.values[:, objects]
        if all(f >= since for f in frames):
            n = len(frames)
            return keys[:, :, :, :n], values[:, :, :, :n]
        index = torch.tensor([i for i, f in enumerate(frames) if f >= since], device=keys.device)
        if index.numel() == 0:
            raise RuntimeError(f"no memory frame at or after frame {since}")
        return _select_frames(keys, index), _select_frames(values, index)

    def has_frames_since(self, since: int) -> bool:
        return any(f >= since for f in self.frames)
