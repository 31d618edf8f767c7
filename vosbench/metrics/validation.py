"""One validation of predicted masks, shared by ``vosbench evaluate`` and ``package-submission``.

Masks are read by their indices (:func:`vosbench.metrics.fastpng.read_id_mask`): palette, grey
8-bit and 1-bit PNGs are accepted whatever their palette; 16-bit and RGB(A) PNGs are refused in
one line naming the file. A prediction may hold 0 and the ids of its sequence's objects as the
split's first annotations define them (:class:`ObjectIds`); anything else, void 255 included, is
refused by both verbs with the same message (:meth:`ObjectIds.message`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from vosbench.data.imageio import VOID_ID
from vosbench.errors import DataError
from vosbench.metrics.fastpng import read_id_mask


def read_prediction(path: str | os.PathLike) -> np.ndarray:
    """The ``H,W`` uint8 indices of a predicted mask PNG (palette, grey or 1-bit; one-line DataError otherwise)."""
    return read_id_mask(path, allow_gray=True)


def _ids_text(ids: Iterable[int]) -> str:
    ids = list(ids)
    return ", ".join(str(i) for i in ids) if ids else "none"


@dataclass(frozen=True)
class ObjectIds:
    """The object ids a prediction of ``sequence`` may hold (0, background, always may).

    ``source`` says where they come from, for messages (e.g. "ids 1..3 of its first annotation").
    """

    sequence: str
    ids: tuple[int, ...]
    source: str = "its first annotations"
    n_objects: int | None = None  # when the ids are not one per object (DAVIS-2016: one object, written 1 or 255)
    _lut: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lut = np.zeros(256, dtype=bool)
        lut[0] = True
        lut[list(self.ids)] = True
        object.__setattr__(self, "_lut", lut)

    @property
    def max_id(self) -> int:
        return max(self.ids, default=0)

    @property
    def contiguous(self) -> bool:
        return list(self.ids) == list(range(1, self.max_id + 1))

    def extra(self, mask: np.ndarray) -> list[int]:
        """The ids in ``mask`` that are not objects of the sequence (sorted)."""
        top = int(mask.max()) if mask.size else 0
        if top <= self.max_id and self.contiguous:  # the common case: one max, no histogram
            return []
        present = np.flatnonzero(np.bincount(mask.ravel(), minlength=256))
        return [int(i) for i in present if not self._lut[i]]

    def extra_in(self, present: Iterable[int]) -> list[int]:
        """The ids of ``present`` that are not objects of the sequence (sorted)."""
        return sorted(int(i) for i in present if not self._lut[int(i)])

    def reason(self, extra: list[int]) -> str:
        """Why ``extra`` ids are refused: the text both verbs give after the mask's name."""
        n = len(self.ids) if self.n_objects is None else self.n_objects
        void = f"; {VOID_ID} is void in the ground truth, never an object" if VOID_ID in extra and VOID_ID not in self.ids else ""
        return (
            f"predicted object id(s) {_ids_text(extra)} but sequence {self.sequence!r} has {n} object(s) "
            f"(ids {_ids_text(self.ids)} from {self.source}){void}; "
            "`vosbench evaluate --ignore-extra-ids` scores them as background"
        )

    def message(self, where: str, extra: list[int]) -> str:
        """The one refusal message both verbs give for ``extra`` ids in the mask at ``where``."""
        return f"{where}: {self.reason(extra)}"

    def check(self, mask: np.ndarray, where: str, *, ignore_extra: bool = False) -> np.ndarray:
        """``mask`` when its ids are allowed; with ``ignore_extra`` a copy with the others set to 0; else DataError."""
        extra = self.extra(mask)
        if not extra:
            return mask
        if not ignore_extra:
            raise DataError(self.message(where, extra))
        return np.where(self._lut[mask], mask, 0).astype(np.uint8)


def first_annotation_ids(first: np.ndarray) -> list[int]:
    """Object ids present in an annotation (background and void excluded)."""
    present = np.flatnonzero(np.bincount(first.ravel(), minlength=256))
    return [int(i) for i in present if i not in (0, VOID_ID)]


def davis2017_objects(sequence: str, first: np.ndarray) -> ObjectIds:
    """The official DAVIS-2017 objects: ids 1..max id of the first annotation (a missing id in between is an always-empty object)."""
    ids = first_annotation_ids(first)
    top = max(ids, default=0)
    return ObjectIds(sequence, tuple(range(1, top + 1)), f"1..{top}, the first annotation's max id" if top else "its first annotation")


def size_problem(mask: np.ndarray, shape: tuple[int, int], where: str, of: str) -> str | None:
    """``where: mask size WxH differs from <of> WxH`` when the shapes differ, else None."""
    if mask.shape[:2] == tuple(shape):
        return None
    return f"{where}: mask size {mask.shape[1]}x{mask.shape[0]} differs from {of} {shape[1]}x{shape[0]}"


def raise_missing(where: str, missing: Sequence[tuple[str, Sequence[str]]]) -> None:
    """One DataError naming every kind of missing (or extra) prediction, ``(what, names)`` each,
    e.g. ``("sequence(s) missing", [...])``; nothing when all are empty."""
    parts = [f"{len(names)} {what}: {', '.join(names)}" for what, names in missing if names]
    if parts:
        raise DataError(f"{where}: " + "; ".join(parts))
