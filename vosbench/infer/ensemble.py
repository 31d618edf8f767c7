"""Checkpoint ensembles: each member (any preset, SCM and D-STM mixed) runs its own engines.

Per video, every member gets its own :class:`~vosbench.infer.tta.TTAInference` (optionally on
an online-finetuned copy of its model); the per-object probabilities of the members are averaged
with the recipe's normalised weights before the final argmax. An ensemble of one member returns
that member's probabilities untouched. A member may also be a folder of saved probabilities
(``infer --save-probs``, or another method's in that format, see :mod:`vosbench.infer.probs`):
it replays them instead of running a model; or an ``hf:`` spec, a SAM-class tracker from
``transformers`` (:mod:`vosbench.infer.hf_video`), which runs its own per-video core.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from vosbench.data.davis import VideoSequence
from vosbench.errors import CheckpointError, ConfigError
from vosbench.fsutil import sha256_file
from vosbench.infer.engine import (
    EngineConfig,
    inference_model,
    mask_to_tensor,
    model_flags,
    object_ids_in,
    prepare_model,
)
from vosbench.infer.finetune import FinetuneConfig, finetune_model
from vosbench.infer.probs import ProbsFolder, SavedProbsPredictor, weighted_sum
from vosbench.infer.recipe import MemberSpec, Recipe
from vosbench.infer.tta import TTAConfig, TTAInference
from vosbench.models import load_checkpoint
from vosbench.progress import Progress


@dataclass
class LoadedMember:
    """A member's model, ready for inference (or its saved probabilities), with its normalised weight."""

    spec: MemberSpec
    # trainable: the network as trained (what online finetuning starts from); else what the engine
    # runs (engine.inference_model: in bf16/fp16 a folded, cast copy). One of them, never both on
    # the device: a second copy of every weight is GPU memory the run does not use.
    model: nn.Module | None
    weight: float
    probs: ProbsFolder | None = None
    engine_model: nn.Module | None = None  # what the engine runs when set; None: model
    trainable: bool = True
    trained_on: dict | None = None  # the checkpoint's record of its training data (vosbench.data.kind)

    @property
    def preset(self) -> str:
        if self.model is None:
            return "saved probabilities"
        if self.hf is not None:
            return self.hf.name
        return str(getattr(self.model.config, "name", "?"))

    @property
    def hf(self):  # HFVideoModel | None
        from vosbench.infer.hf_video import is_hf_member

        return self.model if is_hf_member(self.model) else None

    @property
    def label(self) -> str:
        """How summaries name the member: the checkpoint file name, or the ``hf:`` spec."""
        return self.hf.spec if self.hf is not None else self.spec.checkpoint.name

    @property
    def needs_depth(self) -> bool:
        return self.model is not None and model_flags(self.model)[1]

    def sha256(self) -> str:
        """Digest of the member's checkpoint file, of its saved probabilities, or of an ``hf:``
        model's config and weight files."""
        if self.probs is not None:
            return self.probs.sha256()
        if self.hf is not None:
            return self.hf.sha256()
        return sha256_file(self.spec.checkpoint)


def load_members(recipe: Recipe, device: str | torch.device, engine: EngineConfig | None = None, *,
                 trainable: bool = False, offload_state: bool = False) -> list[LoadedMember]:
    """Load every member checkpoint (weights-only) onto ``device``; missing files fail first.

    ``trainable``: keep each network as trained, for online finetuning (each video then builds its
    engine copy from the fine-tuned weights); otherwise only the engine's network is kept.
    A member path that is a folder is a folder of saved probabilities (``<seq>/probs/<frame>.npz``);
    an ``hf:`` spec is a transformers video tracker (``offload_state``: its session state on the CPU)."""
    from vosbench.infer.hf_video import HFVideoModel, read_model_type

    for spec in recipe.members:
        if spec.hf_reference is not None:
            read_model_type(spec.hf_reference)  # a missing folder or hub id fails before any loading
        elif not (spec.checkpoint.is_file() or spec.checkpoint.is_dir()):
            raise CheckpointError(f"{spec.checkpoint}: checkpoint not found (nor a folder of saved probabilities)")
    weights = recipe.normalised_weights()
    members = []
    precision = (engine or EngineConfig()).precision
    for spec, w in zip(recipe.members, weights):
        if spec.hf_reference is not None:
            hf = HFVideoModel(spec.spec, device, precision, offload_state=offload_state)
            members.append(LoadedMember(spec, hf, w))  # type: ignore[arg-type]
            continue
        if spec.checkpoint.is_dir():
            members.append(LoadedMember(spec, None, w, ProbsFolder(spec.checkpoint)))
            continue
        model, extra = load_checkpoint(spec.checkpoint, map_location="cpu")
        model = prepare_model(model, device, engine)
        if trainable:
            members.append(LoadedMember(spec, model, w, trainable=True, trained_on=extra.get("trained_on")))
        else:
            members.append(LoadedMember(spec, inference_model(model, engine), w, trainable=False,
                                        trained_on=extra.get("trained_on")))
            del model  # the engine runs its own copy in bf16/fp16: the fp32 weights go now
    return members


def refuse_finetune(spec: str) -> str:
    return (f"{spec}: online finetuning of a SAM member (hf:) is not supported; drop --finetune-steps "
            "(or set it to 0) for ensembles with hf: members")


class EnsembleInference:
    """Weighted average of several per-video predictors (same ``step`` contract as the engine)."""

    def __init__(self, predictors: Sequence[TTAInference | SavedProbsPredictor], weights: Sequence[float]):
        if not predictors or len(predictors) != len(weights):
            raise ValueError("need one weight per predictor and at least one predictor")
        self.predictors = list(predictors)
        self.weights = [float(w) for w in weights]

    @property
    def object_ids(self) -> list[int]:
        return self.predictors[0].object_ids

    def reset(self) -> None:
        for p in self.predictors:
            p.reset()

    @torch.inference_mode()
    def step(
        self,
        image: Tensor,
        mask: np.ndarray | Tensor | None = None,
        objects: Sequence[int] | None = None,
        depth: Sequence[Tensor | None] | Tensor | None = None,
    ) -> Tensor:
        """``depth``: one map for all members, or one per member (None for members without depth)."""
        if mask is not None:
            mask = mask_to_tensor(mask, image.device)
            if objects is None:
                objects = object_ids_in(mask)
        depths = list(depth) if isinstance(depth, (list, tuple)) else [depth] * len(self.predictors)
        if len(self.predictors) == 1:
            return self.predictors[0].step(image, mask, objects, depths[0])
        return weighted_sum((p.step(image, mask, objects, d) for p, d in zip(self.predictors, depths)), self.weights)


def video_predictor(
    members: Sequence[LoadedMember],
    engine: EngineConfig,
    tta: TTAConfig,
    finetune: FinetuneConfig | None = None,
    first_frame: tuple[np.ndarray, np.ndarray, list[int], np.ndarray | None] | None = None,
    progress: Progress | None = None,
    sequence: VideoSequence | None = None,
) -> EnsembleInference:
    """The predictor for one video; with ``finetune.steps > 0`` each member is first fine-tuned
    on ``first_frame`` = (image H,W,3 uint8, mask H,W ids, object ids, depth H,W or None).
    Members of saved probabilities replay those of ``sequence`` (needed then)."""
    predictors: list[TTAInference | SavedProbsPredictor] = []
    for m in members:
        if m.probs is not None:
            if sequence is None:
                raise ConfigError("a member of saved probabilities needs the video it replays")
            predictors.append(SavedProbsPredictor(m.probs, sequence.name, sequence.frame_names))
            continue
        model = m.engine_model if m.engine_model is not None else m.model
        if m.hf is not None:
            if finetune is not None and finetune.steps > 0:
                raise ConfigError(refuse_finetune(m.spec.spec))
            predictors.append(TTAInference(model, engine, tta, frames=sequence.num_frames if sequence else None))
            continue
        if finetune is not None and finetune.steps > 0 and first_frame is not None:
            if not m.trainable:
                raise ConfigError("online finetuning needs the members as trained: load_members(..., trainable=True)")
            image, mask, ids, depth = first_frame
            tuned = finetune_model(m.model, image, mask, ids, finetune, depth if m.needs_depth else None, progress)
            model = inference_model(tuned, engine)
        elif m.trainable and m.engine_model is None:
            model = inference_model(m.model, engine)  # no copy in fp32 (the network itself)
        predictors.append(TTAInference(model, engine, tta))
    return EnsembleInference(predictors, [m.weight for m in members])
