"""SAM-class video trackers from Hugging Face ``transformers`` as ensemble members (``hf:`` specs).

A member spec ``hf:<hub id or save_pretrained folder>`` names a ``transformers`` video tracker:
SAM 2 / 2.1 (``Sam2VideoModel``), EdgeTAM (``EdgeTamVideoModel``) or the SAM 3 tracker
(``Sam3TrackerVideoModel``); the family comes from the folder's ``config.json`` (``model_type``).
:class:`HFVideoModel` loads it once per run; :class:`SamVideoCore` is one more implementation of
the per-video interface :class:`~vosbench.infer.engine.InferenceCore` has (``step`` / ``reset`` /
``object_ids`` / ``device``), so TTA, ensembles, ``--save-probs``, merge and provenance treat the
member like a checkpoint.

Per video the core runs SAM 2's semi-supervised protocol on transformers' inference session:
a given mask is a mask prompt on its frame (``add_inputs_to_inference_session(input_masks=...)``),
every frame is then tracked with the session's memory, and the per-object low-resolution logits
are brought to the frame's size with the processor's ``post_process_masks``. Logits become K+1
probabilities by :func:`sam_probabilities`, whose argmax is the label map of SAM 2's
``tools/vos_inference.py`` (the lowest object id whose logit is > 0; background where none is);
docs/probabilities.md has the formula. The independent per-object probabilities (overlapping
masks, e.g. for SA-V) stay available as :meth:`SamVideoCore.object_probabilities`.

Memory on long videos: SAM 2 reads, for each object, every conditioning frame (the frames with a
mask prompt), the ``num_maskmem - 1`` most recent tracked frames and the object pointers of the
``max_object_pointers_in_encoder - 1`` most recent frames; transformers' session keeps every
frame and every frame's outputs. The core drops what the model can no longer read (frames once
encoded, outputs older than both windows), which leaves the masks unchanged and the memory
bounded by the number of prompted frames; ``offload_state`` keeps the session's state on the CPU
(transformers' ``inference_state_device``) for long videos with many objects on a GPU.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vosbench.errors import CheckpointError, ConfigError

HF_PREFIX = "hf:"
INSTALL_HINT = "pip install -e '.[sam]'"


@dataclass(frozen=True)
class HFFamily:
    """A family of transformers video trackers vosbench runs as members."""

    name: str
    model_class: str
    processor_class: str
    model_types: tuple[str, ...]  # config.json model_type values of its checkpoints
    example: str  # a hub id


FAMILIES: tuple[HFFamily, ...] = (
    HFFamily("SAM 2 / SAM 2.1", "Sam2VideoModel", "Sam2VideoProcessor", ("sam2_video", "sam2"),
             "facebook/sam2.1-hiera-tiny"),
    HFFamily("EdgeTAM", "EdgeTamVideoModel", "Sam2VideoProcessor", ("edgetam_video", "edgetam"),
             "yonigozlan/EdgeTAM-hf"),
    HFFamily("SAM 3 tracker", "Sam3TrackerVideoModel", "Sam3TrackerVideoProcessor",
             ("sam3_tracker_video", "sam3_tracker", "sam3_video", "sam3"), "facebook/sam3"),
)


def family_of(model_type: str) -> HFFamily | None:
    for fam in FAMILIES:
        if model_type in fam.model_types:
            return fam
    return None


def hf_reference(spec: str | os.PathLike) -> str | None:
    """The text after ``hf:`` in a member spec, or None when ``spec`` is no ``hf:`` spec."""
    text = str(spec)
    return text[len(HF_PREFIX):] if text.startswith(HF_PREFIX) else None


def is_hub_id(ref: str) -> bool:
    """``org/name`` in the hub's characters (letters, digits, ``-``, ``_``, ``.``)."""
    import re

    return re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", ref) is not None and not ref.startswith(".")


def _looks_like_path(ref: str) -> bool:
    return not is_hub_id(ref)


def resolve_reference(ref: str, base: Path | None = None) -> str:
    """A local folder (absolute; relative ones against ``base``, e.g. a recipe's folder) if one
    exists, else ``ref`` as a hub id (``org/name``)."""
    path = Path(ref).expanduser()
    if not path.is_absolute() and base is not None and (base / path).is_dir():
        path = base / path
    if path.is_dir():
        return str(path.resolve())
    return ref


def _hub_hint(ref: str) -> str:
    return (f"hf:{ref}: not in the Hugging Face cache and the hub is unreachable; run once with network "
            f"(or `huggingface-cli download {ref}`), or pass hf:FOLDER (a folder written by save_pretrained)")


def read_model_type(ref: str) -> tuple[str, Path | None]:
    """``(model_type, local folder or None)`` of an ``hf:`` reference, checked before any weights load."""
    if not ref:
        raise ConfigError("hf: needs a hub id (e.g. hf:facebook/sam2.1-hiera-tiny) or a model folder")
    path = Path(ref).expanduser()
    if path.is_dir():
        config = path / "config.json"
        if not config.is_file():
            raise CheckpointError(f"{path}: not a transformers model folder (no config.json)")
        folder: Path | None = path
    elif path.exists():
        raise CheckpointError(f"{path}: hf: expects a model folder (config.json and weights, as save_pretrained "
                              "writes) or a hub id, got a file")
    elif _looks_like_path(ref):
        raise CheckpointError(f"{path}: model folder not found (hf: takes a folder written by save_pretrained "
                              "or a hub id such as facebook/sam2.1-hiera-tiny)")
    else:
        folder = None
        config = Path(_hub_file(ref, "config.json"))
    try:
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
        raise CheckpointError(f"{config}: unreadable model config ({exc})") from None
    return str(model_type), folder


def _hub_file(ref: str, name: str) -> str:
    """A file of hub repo ``ref`` from the cache, else downloaded; one line when neither works
    (offline: ``HF_HUB_OFFLINE``, or the hub's host does not answer within a few seconds)."""
    try:
        import huggingface_hub
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise ConfigError(f"hf: members need the `transformers` package; install it with {INSTALL_HINT}") from None
    try:
        return hf_hub_download(ref, name, local_files_only=True)
    except Exception:  # noqa: BLE001 - not cached: try the hub
        pass
    require_hub(ref)
    hub_log = huggingface_hub.utils.logging.get_logger("huggingface_hub")
    level = hub_log.level
    hub_log.setLevel("ERROR")  # its retry warnings: the one line below says it all
    try:
        return hf_hub_download(ref, name)
    except Exception as exc:  # noqa: BLE001 - unknown repo, gated, network gone: one line
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"hf:{ref}: cannot download {name} from the Hugging Face hub ({text}); "
                              "offline, pass hf:FOLDER (a folder written by save_pretrained)") from None
    finally:
        hub_log.setLevel(level)


def require_hub(ref: str) -> None:
    """One line naming ``ref`` when the hub cannot be used: ``HF_HUB_OFFLINE``, or its host does
    not answer within a few seconds (rather than after minutes of retries)."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or not _reachable(constants.ENDPOINT):
        raise CheckpointError(_hub_hint(ref))


def _reachable(endpoint: str, timeout: float = 3.0) -> bool:
    """Whether the hub's host accepts a TCP connection (so an offline run fails at once, not after retries)."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(endpoint)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def _transformers() -> Any:
    try:
        import transformers
    except ImportError as exc:
        raise ConfigError(f"hf: members need the `transformers` package ({exc}); install it with {INSTALL_HINT}") from None
    return transformers


def weight_files(folder: Path) -> list[Path]:
    """The files that define a saved model: its config and weights (safetensors / bin shards)."""
    names = sorted(p for p in folder.iterdir() if p.is_file() and (
        p.name == "config.json" or p.suffix in (".safetensors", ".bin") or p.name.endswith(".index.json")))
    return names


def weights_sha256(folder: Path) -> str:
    """One digest over the config and weight files of ``folder`` (names and contents)."""
    from vosbench.fsutil import sha256_file

    h = hashlib.sha256()
    for p in weight_files(folder):
        h.update(f"{p.name}\0{sha256_file(p)}\0".encode())
    return h.hexdigest()


def check_hf_spec(ref: str) -> tuple[HFFamily, str, Path | None]:
    """(family, model_type, local folder or None) of ``hf:ref``, read from its config alone; a
    one-line error for a missing folder, an unreachable uncached hub id or a model that is not a
    video tracker vosbench runs."""
    model_type, folder = read_model_type(ref)
    family = family_of(model_type)
    if family is None:
        known = ", ".join(t for f in FAMILIES for t in f.model_types[:1])
        raise CheckpointError(f"hf:{ref}: model type {model_type!r} is not a video tracker vosbench runs "
                              f"(known: {known})")
    return family, model_type, folder


def hf_identity(ref: str) -> str:
    """What the weights of ``hf:ref`` are, without loading them: a local folder's
    :func:`weights_sha256`; for a hub id, the id at the cached snapshot's commit (downloading
    ``config.json`` once when it is not cached)."""
    _, _, folder = check_hf_spec(ref)
    if folder is not None:
        return weights_sha256(folder)
    snapshot = Path(_hub_file(ref, "config.json")).parent  # .../snapshots/<commit>/
    return hashlib.sha256(f"{ref}@{snapshot.name}".encode()).hexdigest()


class HFVideoModel:
    """A transformers video tracker loaded for inference on one device (what a member holds).

    ``spec`` is the member spec (``hf:...``); ``precision`` the run's (auto resolved per device);
    ``offload_state`` keeps the sessions' state on the CPU.
    """

    def __init__(self, spec: str, device: Any = "cpu", precision: str = "auto", offload_state: bool = False):
        from vosbench.precision import resolve_numerics

        ref = hf_reference(spec)
        if ref is None:
            raise ConfigError(f"{spec}: not an hf: member spec")
        self.spec = spec
        self.reference = ref
        family, model_type, folder = check_hf_spec(ref)  # before importing transformers: bad specs fail fast
        self.family, self.model_type = family, model_type
        tf = _transformers()
        model_cls = getattr(tf, family.model_class, None)
        proc_cls = getattr(tf, family.processor_class, None)
        if model_cls is None or proc_cls is None:
            raise ConfigError(f"hf:{ref}: transformers {tf.__version__} has no {family.model_class}; "
                              f"install transformers>=5 ({INSTALL_HINT})")
        source = str(folder) if folder is not None else ref
        try:
            try:  # a folder, or a hub id already in the cache: no network
                self.model = model_cls.from_pretrained(source, local_files_only=True)
                self.processor = proc_cls.from_pretrained(source, local_files_only=True)
            except OSError:
                if folder is not None:
                    raise
                require_hub(ref)
                self.model = model_cls.from_pretrained(source)  # downloads once into the cache
                self.processor = proc_cls.from_pretrained(source)
        except CheckpointError:
            raise
        except Exception as exc:  # noqa: BLE001 - truncated weights, missing processor, ...: one line
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"hf:{ref}: cannot load the {family.name} model: {first}") from None
        if folder is None:  # the cached snapshot the weights came from (for the provenance hash)
            folder = Path(_hub_file(ref, "config.json")).parent
        self.folder = folder
        self.numerics = resolve_numerics(device, precision, "infer")
        self.device = self.numerics.device
        self.model.eval().to(self.device)
        self.offload_state = bool(offload_state)
        self._sha256: str | None = None
        cfg = self.model.config
        # what the model can still read of frame t - d: memory frames and object pointers
        self.window = max(int(getattr(cfg, "num_maskmem", 7)), int(getattr(cfg, "max_object_pointers_in_encoder", 16)))

    @property
    def name(self) -> str:
        return f"{self.family.name} ({self.model_type})"

    @property
    def config(self) -> Any:
        return self.model.config

    def sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = weights_sha256(self.folder)
        return self._sha256

    def describe(self) -> dict[str, str]:
        return {"model": self.spec, "model_type": self.model_type, "folder": str(self.folder)}

    def video_core(self, config: Any = None, frames: int | None = None) -> SamVideoCore:
        """A per-video core (the engine interface); ``frames``: the video's length when known.
        ``config`` (the STM engine's schedule) does not apply: SAM 2 keeps its own memory schedule."""
        return SamVideoCore(self, frames, independent=bool(getattr(config, "independent_objects", False)))


def sam_probabilities(logits: Any, object_ids: Sequence[int]) -> Any:
    """Per-object logits ``K,H,W`` -> probabilities ``K+1,H,W`` (background first) whose argmax is
    SAM 2's label rule: the lowest object id with logit > 0, background where no logit is > 0.

    Where an object wins by the rule, every other object's logit is capped at 0 (probability 0.5);
    with those logits ``l'``, the probabilities are ``softmax([-max_k l'_k, l'_1, ..., l'_K])``:
    STM's soft aggregation (odds ``q / (1 - q)`` normalised) of the objects' ``sigmoid(l'_k)`` and
    a background ``1 - max_k sigmoid(l'_k)``. docs/probabilities.md says why.
    """
    import torch

    logits = logits.float()
    if logits.shape[0] == 0:
        return torch.ones((1, *logits.shape[1:]), device=logits.device)
    if logits.shape[0] > 1:
        positive = logits > 0
        taken = torch.zeros_like(positive[0])
        losers = torch.zeros_like(positive)
        for k in np.argsort(np.asarray(object_ids), kind="stable").tolist():  # ascending ids
            losers[k] = positive[k] & taken
            taken |= positive[k]
        logits = logits.masked_fill(losers, 0.0)
    background = -logits.max(0, keepdim=True).values
    return torch.softmax(torch.cat([background, logits]), dim=0)


def independent_probabilities(logits: Any) -> Any:
    """Per-object logits ``K,H,W`` -> ``K+1,H,W``: each object's own ``sigmoid(logit)``, background
    ``1 - max`` of them. Objects do not compete: thresholding each at 0.5 keeps SAM's overlaps
    (an object where its logit > 0), for layouts that hold them (SA-V)."""
    import torch

    p = torch.sigmoid(logits.float())
    if p.shape[0] == 0:
        return torch.ones((1, *p.shape[1:]), device=p.device)
    return torch.cat([1 - p.max(0, keepdim=True).values, p])


class SamVideoCore:
    """Propagates masks through one video with a transformers tracker (same contract as
    :class:`~vosbench.infer.engine.InferenceCore`: ``step`` returns float32 ``K+1,H,W``)."""

    def __init__(self, hf: HFVideoModel, frames: int | None = None, independent: bool = False):
        self.hf = hf
        self.frames = frames
        self.independent = independent  # independent_probabilities instead of SAM 2's label rule
        self.device = hf.device
        self.reset()

    @property
    def object_ids(self) -> list[int]:
        return list(self._ids)

    def reset(self) -> None:
        import torch

        state = "cpu" if self.hf.offload_state else self.device
        self.session = self.hf.processor.init_video_session(
            inference_device=self.device, inference_state_device=state, video_storage_device=state,
            processing_device=self.device, dtype=torch.float32)
        if self.frames is not None:  # the whole video's length, as SAM 2's own loop sees it
            self.session.processed_frames = dict.fromkeys(range(self.frames))
        self._ids: list[int] = []
        self._t = 0
        self._size: tuple[int, int] | None = None
        self.logits = None  # K,H,W of the last frame (float32)

    def _pixels(self, image: Any) -> Any:
        """``3,H,W`` in [0,1] -> the processor's model input ``3,S,S`` (as for uint8 video frames)."""
        import torch

        frame = (image * 255).round_().to(torch.uint8)  # in [0, 1]: frames / 255, or TTA's convex resampling
        out = self.hf.processor.video_processor(videos=[frame[None]], device=self.device, return_tensors="pt")
        return out.pixel_values_videos[0][0]

    def step(self, image: Any, mask: Any = None, objects: Sequence[int] | None = None, depth: Any = None) -> Any:
        import torch

        from vosbench.infer.engine import checked_frame, checked_mask, paste_ground_truth

        with torch.inference_mode():
            image = checked_frame(image, self._size, self._t)
            h, w = image.shape[-2:]
            self._size = (h, w)
            t = self._t
            self._t += 1
            s = self.session
            s.video_height, s.video_width = h, w
            given = None
            if mask is not None:
                given, objects = checked_mask(mask, self.device, (h, w), objects)
                if objects:
                    self.hf.processor.add_inputs_to_inference_session(
                        s, frame_idx=t, obj_ids=list(objects), input_masks=[(given == o).cpu() for o in objects])
                    self._ids += [o for o in objects if o not in self._ids]
            if not self._ids:
                return torch.ones(1, h, w, device=self.device)
            pixels = self._pixels(image.to(self.device))
            with self.hf.numerics.autocast():
                if self.frames is None:  # streaming: the model adds the frame
                    out = self.hf.model(inference_session=s, frame=pixels, frame_idx=t)
                else:
                    s.add_new_frame(pixels, t)
                    out = self.hf.model(inference_session=s, frame_idx=t)
            logits = self.hf.processor.post_process_masks(
                [out.pred_masks.float()], original_sizes=[[h, w]], binarize=False)[0][:, 0]  # K,H,W
            self.logits = logits.float()
            self._forget(t)
            if self.independent:
                probs = independent_probabilities(self.logits)
            else:
                probs = sam_probabilities(self.logits, self._ids)
            if given is not None and objects:
                probs = paste_ground_truth(probs[None], given, objects, self._ids)[0]
            return probs

    def object_probabilities(self) -> Any:
        """Independent per-object probabilities ``K,H,W`` of the last frame (``sigmoid`` of the
        logits; masks may overlap), channel ``i`` for ``object_ids[i]``."""
        import torch

        return torch.sigmoid(self.logits) if self.logits is not None else None

    def _forget(self, t: int) -> None:
        """Drop what the model cannot read again: frame ``t``'s pixels (its features are cached)
        and tracked outputs older than the memory / object-pointer windows."""
        s = self.session
        if s.processed_frames is not None and t in s.processed_frames:
            if self.frames is None:
                del s.processed_frames[t]
            else:
                s.processed_frames[t] = None
        old = t - self.hf.window
        if old < 0:
            return
        for per_obj in s.output_dict_per_obj.values():
            per_obj["non_cond_frame_outputs"].pop(old, None)
        for tracked in s.frames_tracked_per_obj.values():
            tracked.pop(old, None)


def is_hf_member(model: Any) -> bool:
    return isinstance(model, HFVideoModel)
