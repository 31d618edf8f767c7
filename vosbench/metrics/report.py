"""The outcome of an evaluation: per-frame values, per-object statistics, the global table, and
their files (the official CSVs, 3 decimals, and a full-precision JSON)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from vosbench.fsutil import atomic_open, atomic_write_text
from vosbench.metrics.summary import GlobalSummary, Statistics, statistics, summarize


@dataclass
class SequenceScores:
    """Per-frame J and F of every object of one sequence (objects 1..K, scored frames only).

    ``object_ids`` names the rows when they are not 1..K; NaN marks a frame on which that object
    is not scored (rules other than DAVIS-2017). ``seen`` (per object: seen category, or None)
    feeds the seen/unseen split; ``late_ids`` are annotated ids absent from the first frame,
    which DAVIS-2017 rules ignore.
    """

    name: str
    frames: list[str]
    j: np.ndarray  # K,N
    f: np.ndarray  # K,N
    object_ids: tuple[int, ...] | None = None
    seen: tuple[bool | None, ...] | None = None
    late_ids: tuple[int, ...] = ()
    extra_frames: dict[str, np.ndarray] = field(default_factory=dict)  # benchmark-specific K,N values (MOSEv2's F_new)

    @property
    def n_objects(self) -> int:
        return int(self.j.shape[0])

    def object_id(self, k: int) -> int:
        return k + 1 if self.object_ids is None else int(self.object_ids[k])

    def scored(self, k: int) -> np.ndarray:
        """Indices of the frames that score object row ``k``."""
        return np.flatnonzero(~np.isnan(self.j[k]))


@dataclass(frozen=True)
class ObjectResult:
    """Statistics of one object; ``name`` is the official row label ``<seq>_<k>``."""

    sequence: str
    object_id: int
    j: Statistics
    f: Statistics

    @property
    def name(self) -> str:
        return f"{self.sequence}_{self.object_id}"


def global_csv_name(split: str) -> str:
    return f"global_results-{split}.csv"


def per_sequence_csv_name(split: str) -> str:
    return f"per-sequence_results-{split}.csv"


@dataclass
class EvaluationResult:
    """Everything an evaluation produced, in split order."""

    split: str
    resolution: str
    sequences: list[SequenceScores]
    objects: list[ObjectResult]
    summary: GlobalSummary
    written: list[Path] = field(default_factory=list)
    task: str = "davis2017"
    extra: dict[str, float | None] = field(default_factory=dict)  # benchmark-specific values (seen/unseen, V; MOSEv2's)
    detected: str = ""  # why `task="auto"` chose these rules
    object_extra: dict[str, dict] = field(default_factory=dict)  # object name -> benchmark-specific values (MOSEv2)

    @classmethod
    def from_scores(cls, split: str, resolution: str, sequences: list[SequenceScores], task: str = "davis2017") -> EvaluationResult:
        objects = []
        for s in sequences:
            for k in range(s.n_objects):
                t = s.scored(k)
                if t.size == len(s.frames):  # DAVIS-2017: every frame, the arrays as they are
                    objects.append(ObjectResult(s.name, s.object_id(k), statistics(s.j[k]), statistics(s.f[k])))
                elif t.size:
                    objects.append(ObjectResult(s.name, s.object_id(k), statistics(s.j[k, t]), statistics(s.f[k, t])))
        summary = summarize([o.j for o in objects], [o.f for o in objects])
        return cls(split, resolution, sequences, objects, summary, task=task)

    def global_table(self) -> pd.DataFrame:
        """One row: J&F-Mean, J-Mean, J-Recall, J-Decay, F-Mean, F-Recall, F-Decay."""
        return pd.DataFrame([self.summary.values()], columns=list(GlobalSummary.COLUMNS))

    def per_sequence_table(self) -> pd.DataFrame:
        """The official per-sequence table: one row per object, ``Sequence,J-Mean,F-Mean``."""
        return pd.DataFrame(
            [(o.name, o.j.mean, o.f.mean) for o in self.objects], columns=["Sequence", "J-Mean", "F-Mean"]
        )

    def per_object_table(self) -> pd.DataFrame:
        """Every statistic of every object."""
        rows = [
            (o.sequence, o.object_id, (o.j.mean + o.f.mean) / 2, o.j.mean, o.j.recall, o.j.decay, o.f.mean, o.f.recall, o.f.decay)
            for o in self.objects
        ]
        return pd.DataFrame(rows, columns=["Sequence", "Object", *GlobalSummary.COLUMNS])

    def per_frame_table(self) -> pd.DataFrame:
        """Long format: Sequence, Object, Frame, J, F."""
        rows = [
            (s.name, s.object_id(k), s.frames[t], float(s.j[k, t]), float(s.f[k, t]))
            for s in self.sequences
            for k in range(s.n_objects)
            for t in s.scored(k)
        ]
        return pd.DataFrame(rows, columns=["Sequence", "Object", "Frame", "J", "F"])

    def to_dict(self) -> dict:
        """Full-precision values: global, per object (with per-frame J and F)."""
        seqs = {s.name: s for s in self.sequences}
        objects = []
        for o in self.objects:
            s = seqs[o.sequence]
            k = next(k for k in range(s.n_objects) if s.object_id(k) == o.object_id)
            t = s.scored(k)
            objects.append({
                "name": o.name,
                "sequence": o.sequence,
                "object_id": o.object_id,
                "J": o.j.as_dict(),
                "F": o.f.as_dict(),
                **self.object_extra.get(o.name, {}),
                "frames": [s.frames[i] for i in t],
                "J_per_frame": [float(v) for v in s.j[k, t]],
                "F_per_frame": [float(v) for v in s.f[k, t]],
            })
        out = {
            "split": self.split,
            "resolution": self.resolution,
            "global": self.summary.as_dict(),
            "objects": objects,
        }
        if self.task != "davis2017":
            out["task"] = self.task
        if self.extra:
            out["benchmark"] = dict(self.extra)
        return out

    def write_csvs(self, folder: str | os.PathLike) -> tuple[Path, Path]:
        """Write the official ``global_results-<split>.csv`` and ``per-sequence_results-<split>.csv``."""
        folder = Path(folder)
        paths = (folder / global_csv_name(self.split), folder / per_sequence_csv_name(self.split))
        for path, table in zip(paths, (self.global_table(), self.per_sequence_table())):
            with atomic_open(path, "w") as fh:
                table.to_csv(fh, index=False, float_format="%.3f")
            self.written.append(path)
        return paths

    def write_json(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n")
        self.written.append(path)
        return path
