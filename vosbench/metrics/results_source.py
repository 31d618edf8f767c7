"""Where predicted masks come from: a results folder, a submission zip, or arrays in memory.

Layout: ``<seq>/<frame>.png`` (palette or grayscale PNG, pixel = object id). A zip may hold the
same layout under one top-level folder. Zips are read member by member, never extracted.
"""

from __future__ import annotations

import os
import posixpath
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import numpy as np

from vosbench.errors import DataError
from vosbench.fsutil import check_regular_file
from vosbench.metrics.fastpng import decode_id_mask, read_id_mask


class MaskReader(Protocol):
    """Predicted id masks by sequence and frame name."""

    def sequences(self) -> set[str]:
        """Names of the sequences that have at least one predicted mask."""

    def frames(self, sequence: str) -> set[str]:
        """Frame names (file stems) predicted for ``sequence``."""

    def read(self, sequence: str, frame: str) -> np.ndarray:
        """The ``H,W`` uint8 id mask of one frame."""

    def describe(self, sequence: str, frame: str) -> str:
        """Where that mask lives, for messages."""


class FolderResults:
    """Predictions in ``root/<seq>/<frame>.png``."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: results folder not found")
        self._index: dict[str, set[str]] | None = None

    @property
    def output_dir(self) -> Path:
        """Where result tables are written: the folder itself."""
        return self.root

    def _build_index(self) -> dict[str, set[str]]:
        index: dict[str, set[str]] = {}
        try:
            with os.scandir(self.root) as entries:
                for entry in entries:
                    if entry.is_dir() and not entry.name.startswith("."):
                        stems = set()
                        for n in os.listdir(entry.path):
                            if n.endswith(".png") and not n.startswith("."):
                                check_regular_file(os.path.join(entry.path, n), "prediction")
                                stems.add(n[:-4])
                        if stems:
                            index[entry.name] = stems
        except OSError as exc:  # e.g. a sequence folder without read permission
            raise DataError(f"{exc.filename or self.root}: cannot list the predictions ({exc.strerror or exc})") from None
        return index

    def sequences(self) -> set[str]:
        if self._index is None:
            self._index = self._build_index()
        return set(self._index)

    def frames(self, sequence: str) -> set[str]:
        if self._index is None:
            self._index = self._build_index()
        return set(self._index.get(sequence, ()))

    def read(self, sequence: str, frame: str) -> np.ndarray:
        return read_id_mask(self.root / sequence / f"{frame}.png", allow_gray=True)

    def describe(self, sequence: str, frame: str) -> str:
        return str(self.root / sequence / f"{frame}.png")


def _safe_member(name: str) -> bool:
    parts = name.split("/")
    return not (name.startswith("/") or ".." in parts or "\\" in name or parts[0] == "__MACOSX")


def zip_pngs(path: Path) -> list[str]:
    """The ``.png`` member names of a zip whose path stays inside it (``..``, absolute and ``__MACOSX`` left out)."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{path}: not a readable zip ({exc})") from None
    return [n for n in names if n.endswith(".png") and _safe_member(n)]


def read_zip_member(zf: zipfile.ZipFile, member: str, where: str) -> bytes:
    """The bytes of one zip member; a one-line DataError naming ``where`` when it is absent or unreadable."""
    try:
        return zf.read(member)
    except KeyError:
        raise DataError(f"{where}: file not found") from None
    # CRC mismatch, truncated archive, corrupt deflate data, unsupported compression, encryption
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError, RuntimeError) as exc:
        raise DataError(f"{where}: cannot read from the zip ({exc})") from None


class ZipResults:
    """Predictions in a submission zip: ``<seq>/<frame>.png``, optionally under one top folder."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        pngs = zip_pngs(self.path)
        depth2 = [n for n in pngs if n.count("/") == 1]
        depth3 = [n for n in pngs if n.count("/") == 2]
        tops = {n.split("/")[0] for n in depth3}
        self.prefix = "" if depth2 or len(tops) != 1 else f"{tops.pop()}/"
        index: dict[str, set[str]] = defaultdict(set)
        for n in pngs:
            if n.startswith(self.prefix) and n.count("/") == self.prefix.count("/") + 1:
                seq, fname = n[len(self.prefix) :].split("/")
                if seq and not fname.startswith("."):
                    index[seq].add(fname[:-4])
        self._index = dict(index)
        self._zip: zipfile.ZipFile | None = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_zip"] = None  # each process opens its own handle
        return state

    def __del__(self) -> None:
        if getattr(self, "_zip", None) is not None:
            self._zip.close()

    @property
    def output_dir(self) -> Path:
        """Where result tables are written: next to the zip."""
        return self.path.parent

    def sequences(self) -> set[str]:
        return set(self._index)

    def frames(self, sequence: str) -> set[str]:
        return set(self._index.get(sequence, ()))

    def _member(self, sequence: str, frame: str) -> str:
        return posixpath.join(self.prefix + sequence, f"{frame}.png")

    def read(self, sequence: str, frame: str) -> np.ndarray:
        if self._zip is None:
            self._zip = zipfile.ZipFile(self.path)
        where = self.describe(sequence, frame)
        return decode_id_mask(read_zip_member(self._zip, self._member(sequence, frame), where), where, allow_gray=True)

    def describe(self, sequence: str, frame: str) -> str:
        return f"{self.path}:{self._member(sequence, frame)}"


class ArrayResults:
    """Predictions already in memory: ``{sequence: {frame: H,W uint8 id mask}}``."""

    def __init__(self, masks: Mapping[str, Mapping[str, np.ndarray]]):
        self._masks = masks

    def sequences(self) -> set[str]:
        return {s for s, frames in self._masks.items() if frames}

    def frames(self, sequence: str) -> set[str]:
        return set(self._masks.get(sequence, {}))

    def read(self, sequence: str, frame: str) -> np.ndarray:
        mask = np.asarray(self._masks[sequence][frame])
        if mask.ndim != 2:
            raise DataError(f"{self.describe(sequence, frame)}: mask must be 2-D (H,W object ids), got shape {mask.shape}")
        if mask.dtype != np.uint8:
            if mask.size and (mask.min() < 0 or mask.max() > 255):
                raise DataError(f"{self.describe(sequence, frame)}: object ids must lie in 0..255")
            mask = mask.astype(np.uint8)
        return mask

    def describe(self, sequence: str, frame: str) -> str:
        return f"prediction {sequence}/{frame}"


def open_results(path: str | os.PathLike, *, folder=FolderResults, zipped=ZipResults, layout: str = "<seq>/<frame>.png"):
    """A results folder or a submission ``.zip`` (read by ``folder`` / ``zipped``, e.g. SA-V's per-object readers)."""
    path = Path(path)
    if path.is_dir():
        return folder(path)
    if path.is_file():
        if zipfile.is_zipfile(path):
            return zipped(path)
        raise DataError(f"{path}: results must be a folder {layout} or a .zip of one")
    raise DataError(f"{path}: results not found")
