"""The real ladder steps: ``vosbench train`` → ``vosbench infer`` → ``vosbench evaluate`` as library calls."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vosbench.ablation.ladder import RungSpec
from vosbench.depth.prepare import NORMALIZATION_FILE
from vosbench.errors import ConfigError, DataError, VosbenchError
from vosbench.progress import Progress


def toml_value(value: Any) -> str:
    """Format a Python value as a TOML value for a ``key=value`` override."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot express {value!r} as a TOML value")


def lookalike_sequences(data: Path) -> set[str]:
    """Sequences that the embedded dataset's manifest marks as look-alike videos (empty otherwise)."""
    manifest = data / "manifest.json"
    if not manifest.is_file():
        return set()
    seqs = json.loads(manifest.read_text()).get("sequences", {})
    return {name for name, s in seqs.items() if s.get("synthetic", {}).get("lookalike")}


def data_content_fingerprint(root: Path) -> str:
    """The identity of a DAVIS-layout root's data, as :mod:`vosbench.provenance` defines it: for every
    sequence of every split file, at every resolution present, the frame and depth-map lists
    (names, sizes, mtimes) and the annotations (names and bytes).

    One key for all steps (training may read any split): a changed frame or annotation anywhere
    under ``root`` redoes training, inference and evaluation.
    """
    from vosbench.data.davis import RESOLUTIONS, list_splits
    from vosbench.data.frames import list_frame_files
    from vosbench.data.names import read_name_lines
    from vosbench.provenance import content_fingerprint, files_fingerprint

    names: dict[str, None] = {}
    for split in list_splits(root):
        names.update(dict.fromkeys(read_name_lines(root / "ImageSets" / "2017" / f"{split}.txt")))
    h = hashlib.sha256()
    for res in RESOLUTIONS:
        if not (root / "JPEGImages" / res).is_dir():
            continue
        for name in names:
            frames = list_frame_files(root / "JPEGImages" / res / name)
            annotations = list_frame_files(root / "Annotations" / res / name, (".png",))
            depth = list_frame_files(root / "Depth" / res / name, (".png",))
            entry = [res, name, files_fingerprint(frames), content_fingerprint(annotations), files_fingerprint(depth)]
            h.update(json.dumps(entry).encode())
    return h.hexdigest()


class VosbenchSteps:
    """Train on ``data``'s training split (per the rung's config), infer and evaluate on ``split``.

    ``replace_data``: every rung trains on ``data`` alone (its training split), whatever dataset mix
    its configs name (``ablate --data``), and where ``data``'s frames are smaller than a stage's
    training crop, at their own resolution (:meth:`DataSection.fitted_to_frames`, see
    :meth:`fit_note`); otherwise ``data`` only sets ``data.root``. ``overrides``
    (``ablate --set``) apply to every training stage after the rung's own; ``allow_random_init`` as
    ``train --allow-random-init``.
    """

    def __init__(self, data: str | os.PathLike, split: str = "val", resolution: str = "480p",
                 device: str = "auto", max_steps: int | None = None, workers: int | None = None,
                 *, replace_data: bool = False, overrides: Sequence[str] = (), allow_random_init: bool = False):
        self.data = Path(data)
        if not self.data.is_dir():
            raise DataError(f"{self.data}: dataset root not found")
        self.split = split
        self.resolution = resolution
        self.device = device
        self.max_steps = max_steps
        self.workers = workers
        self.replace_data = replace_data
        self.extra_overrides = list(overrides)
        self.allow_random_init = allow_random_init
        self._short_sides: dict[tuple[str, str], int] = {}

    def data_fingerprint(self) -> str:
        """Hash of the dataset's manifest, split lists and depth records (`prepare depth` writes one
        ``normalization.json`` per sequence naming the estimator), and of the data itself
        (:func:`data_content_fingerprint`), so changed frames or ground truth redo every step."""
        h = hashlib.sha256()
        h.update(data_content_fingerprint(self.data).encode())
        records = [self.data / "manifest.json"]
        records += sorted((self.data / "ImageSets").rglob("*.txt"))
        records += sorted((self.data / "Depth").glob(f"*/*/{NORMALIZATION_FILE}"))
        for p in records:
            if p.is_file():
                h.update(str(p.relative_to(self.data)).encode() + b"\0" + p.read_bytes())
        h.update(f"{self.split}/{self.resolution}/max_steps={self.max_steps}".encode())
        h.update(json.dumps({"replace_data": self.replace_data, "set": self.extra_overrides}).encode())
        return h.hexdigest()[:16]

    def _base_overrides(self, rung: RungSpec) -> list[str]:
        own = [f"{k}={toml_value(v)}" for k, v in rung.train_overrides.items()]
        data = ["data.sources=[]"] if self.replace_data else []  # one `davis` source at data.root
        return own + data + self.extra_overrides

    def _overrides(self, rung: RungSpec) -> list[str]:
        base = self._base_overrides(rung)
        return base + self._fit(rung, base) if self.replace_data else base

    def frame_short_side(self, split: str, resolution: str) -> int:
        """The smallest short side of ``data``'s frames in ``split`` (first frame of each sequence)."""
        key = (split, resolution)
        if key not in self._short_sides:
            from vosbench.data.davis import DavisDataset

            self._short_sides[key] = DavisDataset(self.data, split, resolution).smallest_short_side()
        return self._short_sides[key]

    def _fit(self, rung: RungSpec, overrides: list[str]) -> list[str]:
        """``data.crop`` / ``data.short_side`` overrides that train a stage at the replaced data's own
        resolution where its frames are smaller than the stage's crop (:meth:`DataSection.fitted_to_frames`);
        empty otherwise."""
        from vosbench.train.run import resolve_run_config

        assert rung.train_config is not None
        data = resolve_run_config(rung.train_config, data=self.data, overrides=overrides).data
        try:
            short = self.frame_short_side(data.split, data.resolution)
        except DataError:
            return []  # no such split: the preflight (_check_stage) reports it after the model's problems
        fitted = data.fitted_to_frames(short)
        if fitted is data:
            return []
        return [f"data.crop={toml_value(list(fitted.crop))}", f"data.short_side={toml_value(list(fitted.short_side))}"]

    def fit_note(self, rungs: Sequence[RungSpec]) -> str | None:
        """One line saying which training crops ``--data`` scaled down to its frames' size (None: none).

        Stages whose config does not resolve are skipped; the ladder's preflight reports them."""
        from vosbench.train.run import resolve_run_config

        if not self.replace_data:
            return None
        changes: dict[str, int] = {}
        short = None
        for rung in rungs:
            for stage in (rung.pretraining(), rung):
                if stage is None or stage.train_config is None:
                    continue
                try:
                    base = self._base_overrides(stage)
                    before = resolve_run_config(stage.train_config, data=self.data, overrides=base).data
                    after = resolve_run_config(stage.train_config, data=self.data,
                                               overrides=base + self._fit(stage, base)).data
                except VosbenchError:
                    continue
                if after.crop == before.crop and after.short_side == before.short_side:
                    continue
                short = self.frame_short_side(before.split, before.resolution)
                text = (f"crop {before.crop[0]}x{before.crop[1]} -> {after.crop[0]}x{after.crop[1]}, short side "
                        f"[{before.short_side[0]}, {before.short_side[1]}] -> [{after.short_side[0]}, {after.short_side[1]}]")
                changes[text] = changes.get(text, 0) + 1
        if not changes:
            return None
        parts = "; ".join(f"{text} ({n} stage{'s' if n > 1 else ''})" for text, n in changes.items())
        return (f"{self.data}: frames are {short} px on the short side, smaller than the training crops, "
                f"so those stages train at the frames' resolution: {parts}")

    def _check_stage(self, rung: RungSpec, producer: RungSpec | None) -> Any:
        """Resolve a training stage, build its model (meta device) and check its initial weights
        (``producer``: the stage that will write its init checkpoint) -> its ModelConfig."""
        from vosbench.train.init import check_start, model_shapes
        from vosbench.train.loop import model_config
        from vosbench.train.run import resolve_run_config

        assert rung.train_config is not None
        try:
            cfg = resolve_run_config(rung.train_config, data=self.data, overrides=self._overrides(rung))
            model_cfg = model_config(cfg)
            model_shapes(model_cfg)
            producer_cfg = self._check_stage(producer, None) if producer is not None else None
            if producer is not None:
                cfg.train.init_checkpoint = f"the checkpoint of {producer.name!r}"
            check_start(cfg.train, model_cfg, allow_random_init=self.allow_random_init, producer=producer_cfg)
            if self.replace_data:  # the stage trains on data's split: it must be there
                self.frame_short_side(cfg.data.split, cfg.data.resolution)
        except VosbenchError as exc:
            raise ConfigError(f"rung {rung.name!r}: {exc}") from None
        return model_cfg

    def check(self, rung: RungSpec) -> None:
        """Resolve the rung's training config(s), build its model(s), check their initial weights
        (the init checkpoint, or the pretraining stage that will write it) and the inference options."""
        from vosbench.infer.run import InferOptions

        try:
            options = InferOptions.resolve(**rung.infer_options)
            options.tta(), options.finetune(), options.engine()  # each validates its values
        except (ConfigError, TypeError, ValueError) as exc:
            raise ConfigError(f"rung {rung.name!r}: {exc}") from None
        if rung.checkpoint is not None:
            from vosbench.infer.hf_video import check_hf_spec, hf_reference

            ref = hf_reference(rung.checkpoint)
            if ref is not None:
                try:
                    check_hf_spec(ref)
                except VosbenchError as exc:
                    raise ConfigError(f"rung {rung.name!r}: {exc}") from None
            elif not rung.checkpoint.is_file():
                raise DataError(f"rung {rung.name!r}: checkpoint {rung.checkpoint} not found")
            return
        self._check_stage(rung, rung.pretraining())

    def train(self, rung: RungSpec, work_dir: Path, progress: Progress) -> Path:
        from vosbench.train.checkpointing import has_checkpoint
        from vosbench.train.run import train_from_config

        assert rung.train_config is not None
        result = train_from_config(
            rung.train_config,
            data=self.data,
            out=work_dir,
            resume=has_checkpoint(work_dir),
            max_steps=self.max_steps,
            device=self.device,
            overrides=self._overrides(rung),
            progress=progress,
            allow_random_init=self.allow_random_init,
        )
        return result.last_checkpoint

    def infer(self, rung: RungSpec, checkpoint: Path, out_dir: Path, progress: Progress,
              ensemble: Sequence[Path] = ()) -> None:
        from vosbench.infer.recipe import MemberSpec
        from vosbench.infer.run import InferOptions, infer_dataset

        options = InferOptions.resolve(**{**rung.infer_options, "device": self.device, "overwrite": True})
        members: str | list[MemberSpec] = str(checkpoint)
        if ensemble:
            members = [MemberSpec(Path(p)) for p in (checkpoint, *ensemble)]
        infer_dataset(members, self.data, self.split, self.resolution, out_dir, options, progress)

    def evaluate(self, rung: RungSpec, results_dir: Path, progress: Progress) -> dict[str, Any]:
        from vosbench.metrics import evaluate_results
        from vosbench.metrics.summary import summarize

        result = evaluate_results(self.data, results_dir, self.split, self.resolution,
                                  workers=self.workers, progress=progress)
        out: dict[str, Any] = {"global": result.summary.as_dict(), "subsets": {}}
        lookalike = lookalike_sequences(self.data)
        groups = {
            "look-alike": [o for o in result.objects if o.sequence in lookalike],
            "other": [o for o in result.objects if o.sequence not in lookalike],
        }
        if lookalike:
            for name, objs in groups.items():
                if objs:
                    out["subsets"][name] = summarize([o.j for o in objs], [o.f for o in objs]).as_dict()
        return out
