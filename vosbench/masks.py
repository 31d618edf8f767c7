"""Per-object masks of one frame: the representation for objects that may overlap.

vosbench's label maps (``H,W`` uint8, pixel = object id) hold one object per pixel, which is what
DAVIS, YouTube-VOS, MOSE and LVOS annotate and score. SA-V annotates each object in its own
binary PNG, and objects overlap (a person and their hand); SAM-family models score each object
independently. :class:`ObjectMasks` keeps ``K`` binary masks with their object ids so those
overlaps survive; it is used where a benchmark needs it (SA-V ground truth, results and
predictions) and converted to and from label maps at the edges:

* :meth:`ObjectMasks.from_label_map`: every id its own mask (never overlapping);
* :meth:`ObjectMasks.to_label_map`: one id per pixel; where objects overlap the one listed
  first wins (SAM 2's tools paint the lowest id last, the same rule);
* :meth:`ObjectMasks.from_probabilities`: an engine's ``K+1,H,W`` probabilities (row 0 the
  background). Objects that compete for pixels (STM-family softmax aggregation) take the arg-max,
  so they never overlap; a member that scores objects independently (``independent=True``,
  e.g. SAM 2's per-object logits after a sigmoid) keeps each object where its own probability
  exceeds 0.5, overlaps included;
* :meth:`ObjectMasks.from_logits`: independent per-object logits, an object where its logit > 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from vosbench.data.imageio import VOID_ID

MAX_LABEL_ID = VOID_ID - 1  # a label map holds ids 1..254; 255 is void


@dataclass(frozen=True, eq=False)
class ObjectMasks:
    """``K`` binary masks of one frame (``masks``: ``K,H,W`` bool) and their object ids (``ids``)."""

    ids: tuple[int, ...]
    masks: np.ndarray

    def __post_init__(self) -> None:
        masks = np.asarray(self.masks)
        if masks.ndim != 3:
            raise ValueError(f"per-object masks must be K,H,W, got shape {masks.shape}")
        if masks.dtype != np.bool_:
            raise ValueError(f"per-object masks must be bool, got {masks.dtype}")
        ids = tuple(int(i) for i in self.ids)
        if len(ids) != masks.shape[0]:
            raise ValueError(f"{len(ids)} object ids for {masks.shape[0]} masks")
        if len(set(ids)) != len(ids):
            raise ValueError(f"object ids repeat: {ids}")
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "masks", masks)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the frame."""
        return int(self.masks.shape[1]), int(self.masks.shape[2])

    def mask(self, object_id: int) -> np.ndarray:
        """The ``H,W`` bool mask of one object."""
        try:
            return self.masks[self.ids.index(int(object_id))]
        except ValueError:
            raise KeyError(f"no object {object_id} (objects: {', '.join(map(str, self.ids)) or 'none'})") from None

    def overlap(self) -> np.ndarray:
        """``H,W`` bool: pixels that more than one object holds."""
        return self.masks.sum(axis=0, dtype=np.int32) > 1 if len(self) else np.zeros(self.shape, bool)

    @classmethod
    def empty(cls, ids: Iterable[int], shape: tuple[int, int]) -> ObjectMasks:
        ids = tuple(ids)
        return cls(ids, np.zeros((len(ids), *shape), dtype=bool))

    @classmethod
    def from_label_map(cls, labels: np.ndarray, ids: Sequence[int] | None = None) -> ObjectMasks:
        """Object ``i`` where ``labels == i``; ``ids`` default: those present (background 0 and void 255 left out)."""
        labels = np.asarray(labels)
        if labels.ndim != 2:
            raise ValueError(f"a label map is H,W, got shape {labels.shape}")
        if ids is None:
            present = np.flatnonzero(np.bincount(labels.ravel(), minlength=256)) if labels.size else []
            ids = [int(i) for i in present if i not in (0, VOID_ID)]
        ids = tuple(int(i) for i in ids)
        return cls(ids, labels[None] == np.array(ids, dtype=labels.dtype).reshape(-1, 1, 1))

    def to_label_map(self) -> np.ndarray:
        """``H,W`` uint8 ids, 0 where no object is; where objects overlap the one listed first wins."""
        bad = [i for i in self.ids if not 0 < i <= MAX_LABEL_ID]
        if bad:
            raise ValueError(f"object id(s) {bad} cannot be written in a label map (ids 1..{MAX_LABEL_ID})")
        labels = np.zeros(self.shape, dtype=np.uint8)
        for oid, m in zip(reversed(self.ids), self.masks[::-1]):
            labels[m] = oid
        return labels

    @classmethod
    def from_probabilities(cls, probs: np.ndarray, ids: Sequence[int], *, independent: bool = False) -> ObjectMasks:
        """From ``K+1,H,W`` probabilities (row 0 background, row k object ``ids[k-1]``).

        Competing objects (``independent=False``): each pixel goes to the arg-max row, as `infer`
        writes label maps. Independent objects: object k where ``probs[k] > 0.5``, whatever the others.
        """
        probs = np.asarray(probs)
        ids = tuple(int(i) for i in ids)
        if probs.ndim != 3 or probs.shape[0] != len(ids) + 1:
            raise ValueError(f"expected {len(ids) + 1},H,W probabilities (background first), got shape {probs.shape}")
        if independent:
            return cls(ids, probs[1:] > 0.5)
        winner = probs.argmax(axis=0)
        return cls(ids, winner[None] == np.arange(1, len(ids) + 1).reshape(-1, 1, 1))

    @classmethod
    def from_logits(cls, logits: np.ndarray, ids: Sequence[int]) -> ObjectMasks:
        """From independent per-object ``K,H,W`` logits: object k where ``logits[k] > 0``."""
        logits = np.asarray(logits)
        if logits.ndim != 3:
            raise ValueError(f"expected K,H,W logits, got shape {logits.shape}")
        return cls(tuple(ids), logits > 0)
