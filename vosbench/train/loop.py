"""The training loop: clip forward (STM / SCM / D-STM), Adam, checkpoints, resume, DDP.

One step takes a batch of 3-frame clips: frame 0 is encoded into memory with its ground-truth
mask; frames 1 and 2 are predicted (losses on both); frame 1's predicted soft mask joins the memory
for frame 2. Models with the SCM spatial prior (SCM §2.3) get, for each predicted frame, the
ground-truth mask of the frame just before it in the video (the sample's ``prior``), and in the
curriculum's final phase (smaller maximum skip) their own previous prediction, as the 0-1 mask the
inference engine gives at test time (one-hot of the argmax, no gradient through it).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from vosbench.data.kind import trained_on
from vosbench.errors import CheckpointError, ConfigError, VosbenchError
from vosbench.fsutil import sweep_temps
from vosbench.precision import apply_backend_policy, resolve_device, resolve_numerics, resolve_precision
from vosbench.progress import Progress, ensure_progress
from vosbench.train import curriculum
from vosbench.train.batches import RunBatches, check_split, micro_weight, run_loader
from vosbench.train.checkpointing import (
    capture_rng,
    link_or_copy,
    has_checkpoint,
    load_resume_checkpoint,
    non_finite_tensors,
    prune_step_checkpoints,
    restore_rng,
    save_training_checkpoint,
)
from vosbench.train.config import TrainConfig, write_config
from vosbench.train.datasets import ClipDataset, data_roots, open_sources
from vosbench.train.distributed import (
    DistContext,
    agreed,
    barrier,
    broadcast_from_main,
    check_shared_folder,
    init_distributed,
    mean_across,
    shutdown,
    sync_batchnorm,
    trainable_batchnorms,
)
from vosbench.train.init import InitPlan, check_start, load_init
from vosbench.train.optim import build_optimizer, set_lr
from vosbench.train.trainlog import LossLog, read_log

log = logging.getLogger(__name__)


class NonFiniteLossError(VosbenchError):
    """The loss became NaN or infinite; training stopped before the bad update."""


@dataclass
class TrainResult:
    out_dir: Path
    last_checkpoint: Path
    step: int
    total_steps: int
    final_loss: float
    seconds: float
    device: str = ""  # the device and precision that ran (auto resolved)
    precision: str = ""


# --------------------------------------------------------------------------- one clip


def _segmentation_loss(output: Any, target: torch.Tensor, loss_cfg: Any, valid: torch.Tensor) -> tuple[torch.Tensor, dict]:
    from vosbench.losses import segmentation_loss

    return segmentation_loss(output, target, loss_cfg, valid=valid, as_tensors=True)


def hard_prediction(probs: torch.Tensor) -> torch.Tensor:
    """One-hot 0-1 masks B,K,H,W of the arg-max object of ``probs`` B,K+1,H,W (what inference feeds the prior)."""
    probs = probs.detach()
    return F.one_hot(probs.argmax(1), probs.shape[1]).permute(0, 3, 1, 2)[:, 1:].float()


def clip_forward(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], model_cfg: Any, *, own_prior: bool = False
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Mean loss over frames 1..T-1 of a batch of clips, and the mean of each loss part (detached
    0-d tensors on the loss's device; ``float`` them once per step).

    ``model`` provides the three API calls (``encode_query``, ``encode_memory``, ``segment``).
    """
    net = model
    images, masks, target, valid = batch["images"], batch["masks"], batch["target"], batch["valid"]
    depth = batch.get("depth")
    gt_prior = batch.get("prior", masks[:, :-1])  # [:, t]: ground truth of the video frame before frame t
    if "prior" not in batch:  # no separate prior masks: the previous sampled frame's (index t-1)
        gt_prior = torch.cat([masks[:, :1], gt_prior], dim=1)
    n_frames = images.shape[1]

    def d(t: int) -> torch.Tensor | None:
        return None if depth is None else depth[:, t]

    q0 = net.encode_query(images[:, 0], d(0))
    mem = net.encode_memory(images[:, 0], masks[:, 0], d(0), query=q0)
    keys, values = [mem.key], [mem.value]
    own = masks[:, 0]  # the model's own previous prediction as a 0-1 mask (frame 0: its ground truth)
    total = images.new_zeros(())
    parts_sum: dict[str, Any] = {}  # detached 0-d tensors: read back once per step, not per frame
    for t in range(1, n_frames):
        q = net.encode_query(images[:, t], d(t))
        mk, mv = torch.stack(keys, dim=3), torch.stack(values, dim=3)  # B,K,C,T,h,w
        prior = None
        if model_cfg.spatial_prior:
            prior = own if own_prior else gt_prior[:, t]
        out = net.segment(q, mk, mv, prev_mask=prior, valid=valid)
        loss, parts = _segmentation_loss(out, target[:, t], model_cfg.loss, valid)
        total = total + loss
        for k, v in parts.items():
            parts_sum[k] = parts_sum.get(k, 0.0) + v
        prev_pred = out.probs[:, 1:].float()  # B,K,H,W soft masks of the real slots
        own = hard_prediction(out.probs)
        if t < n_frames - 1:
            m = net.encode_memory(images[:, t], prev_pred, d(t), query=q)
            keys.append(m.key)
            values.append(m.value)
    n = n_frames - 1
    return total / n, {k: v / n for k, v in parts_sum.items()}


class ClipLoss(torch.nn.Module):
    """Wraps a VOSModel so one ``forward`` call runs a whole clip (DDP syncs gradients through forward)."""

    def __init__(self, model: torch.nn.Module, model_cfg: Any):
        super().__init__()
        self.model = model
        self.model_cfg = model_cfg

    def forward(self, batch: dict[str, torch.Tensor], own_prior: bool = False) -> tuple[torch.Tensor, dict[str, Any]]:
        return clip_forward(self.model, batch, self.model_cfg, own_prior=own_prior)


# --------------------------------------------------------------------------- set-up helpers


def model_config(cfg: TrainConfig) -> Any:
    """The ModelConfig of ``cfg``'s ``[model]`` section (errors name the section)."""
    from vosbench.models import get_preset

    try:
        return get_preset(cfg.model.preset, **cfg.model.overrides)
    except ConfigError as exc:  # unknown preset or model key: say which section it is in
        raise ConfigError(f"[model] {exc}") from None


def _build_model(cfg: TrainConfig, *, imagenet: bool, allow_random_init: bool) -> tuple[torch.nn.Module, Any]:
    """The model with its ImageNet backbone weights (``imagenet``); unavailable weights under
    --allow-random-init leave the backbones random, with a warning."""
    from vosbench.models import build_model
    from vosbench.models.backbone import BackboneWeightsUnavailable

    model_cfg = model_config(cfg)
    torch.manual_seed(cfg.train.seed)
    if not imagenet or not model_cfg.backbone_weights:
        return build_model(model_cfg.replace(backbone_weights=None)), model_cfg
    try:
        return build_model(model_cfg), model_cfg
    except BackboneWeightsUnavailable as exc:
        if not (allow_random_init or cfg.train.allow_random_init):
            raise
        log.warning("%s; the backbones start random (--allow-random-init)", exc)
        torch.manual_seed(cfg.train.seed)
        return build_model(model_cfg.replace(backbone_weights=None)), model_cfg


def _to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _run_loader(dataset: ClipDataset, ctx: DistContext, cfg: TrainConfig, start: int, stop: int,
                dev: torch.device) -> DataLoader:
    """This rank's micro-batches of steps ``start``..``stop-1`` (one DataLoader for the whole run)."""
    batches = RunBatches(n_samples=len(dataset), batch_size=cfg.train.batch_size, world=ctx.world_size,
                         rank=ctx.rank, accumulate=cfg.train.accumulate, seed=cfg.train.seed, start=start, stop=stop,
                         max_skip_at=lambda epoch: curriculum.max_skip_at(cfg.curriculum, epoch, cfg.train.epochs))
    return run_loader(dataset, batches, workers=cfg.data.workers, pin_memory=dev.type == "cuda")


def _ddp(net: torch.nn.Module, model: torch.nn.Module, dev: torch.device, ctx: DistContext) -> torch.nn.Module:
    """``net`` under DDP. Trainable BatchNorm becomes SyncBatchNorm on CUDA (statistics over the
    global batch); torch has no SyncBatchNorm on the CPU, where they stay per rank (a warning). No
    ``find_unused_parameters``: every preset's step uses every trainable parameter (tested), and
    the search costs a graph traversal per step."""
    if trainable_batchnorms(model):
        if dev.type == "cuda":
            n = sync_batchnorm(model)
            if ctx.is_main:
                log.info("%d trainable BatchNorm layers synchronised across %d ranks (SyncBatchNorm)", n, ctx.world_size)
        elif ctx.is_main:
            log.warning("trainable BatchNorm under DDP on %s: statistics are per rank (torch's SyncBatchNorm "
                        "needs a GPU); a 1-process run normalises over the whole batch", dev.type)
    return torch.nn.parallel.DistributedDataParallel(net, device_ids=[dev.index] if dev.type == "cuda" else None)


# keys that may change between a run and its resumption without changing what it computes
RESUME_FREE_KEYS = frozenset({"data.root", "data.workers", "train.save_every", "train.log_every", "train.tensorboard",
                              "train.threads", "train.keep_checkpoints", "train.allow_random_init"})


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
    return out


def changed_keys(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Dotted config keys whose values differ between a checkpoint's saved config and ``current``."""
    a, b = _flat(saved), _flat(current)
    return sorted(k for k in set(a) | set(b) if k not in RESUME_FREE_KEYS and a.get(k) != b.get(k))


def preflight(cfg: TrainConfig, out: Path, *, resume: bool, world_size: int = 1,
              allow_random_init: bool = False) -> tuple[list[tuple[Any, float]], InitPlan | None]:
    """The input checks a run makes before it writes anything -> (opened data sources, init plan).

    ``vosbench train --nproc N`` calls it before starting torchrun, so bad input is one error line.
    A new run's initial weights are checked too (see :func:`vosbench.train.init.check_start`).
    """
    check_split(cfg.train.batch_size, world_size, cfg.train.accumulate)
    if cfg.data.samples_per_epoch < cfg.train.batch_size:
        raise ConfigError(f"data.samples_per_epoch ({cfg.data.samples_per_epoch}) is smaller than train.batch_size ({cfg.train.batch_size})")
    if Path(out).exists() and not Path(out).is_dir():
        raise ConfigError(f"{out}: --out exists and is not a folder")
    if resume and (Path(out) / "log.csv").is_file():
        read_log(Path(out) / "log.csv")  # a damaged log fails here, before anything is written
    if not resume and has_checkpoint(out):
        raise CheckpointError(f"{Path(out) / 'last.pt'}: a training run is already there (checkpoints in {out}); "
                              "pass --resume to continue it or choose another --out")
    model_cfg = model_config(cfg)
    plan = None
    if not (resume and has_checkpoint(out)):
        plan = check_start(cfg.train, model_cfg, allow_random_init=allow_random_init)
    return open_sources(cfg.data), plan


def _load_resume_state(out: Path, model: torch.nn.Module, model_cfg: Any,
                       optimizer: torch.optim.Optimizer) -> tuple[Path, dict[str, Any]]:
    """Load the checkpoint a resumed run continues from (:func:`load_resume_checkpoint`: ``last.pt``,
    else the newest intact ``step-N.pt``) into ``model`` / ``optimizer`` -> (its path, its extra state)."""
    path, loaded, extra = load_resume_checkpoint(out, expect=model_cfg)
    missing = [k for k in ("step", "optimizer", "rng") if k not in extra]
    if missing:
        raise CheckpointError(f"{path}: not a training checkpoint (no {', '.join(missing)}); cannot resume from it")
    model.load_state_dict(loaded.state_dict())
    try:
        optimizer.load_state_dict(extra["optimizer"])
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"{path}: optimizer state does not fit this model's trainable parameters ({exc})") from None
    return path, extra


def _check_same_resume(path: Path, chosen: str) -> None:
    if str(path) != chosen:
        raise CheckpointError(f"{path}: this rank would resume from another checkpoint than rank 0 ({chosen}); "
                              "--out must look the same from every node")


# --------------------------------------------------------------------------- the loop


def train(
    cfg: TrainConfig,
    out_dir: str | os.PathLike,
    *,
    resume: bool = False,
    max_steps: int | None = None,
    device: str = "auto",
    progress: Progress | None = None,
    allow_random_init: bool = False,
) -> TrainResult:
    """Train per ``cfg`` into ``out_dir`` (``last.pt``, ``step-<N>.pt``, ``log.csv``, ``config.toml``).

    Under torchrun (WORLD_SIZE > 1) each process runs this function; rank 0 writes the outputs.
    ``max_steps`` stops early without changing any schedule, so a later ``resume`` continues the
    very same run. ``allow_random_init``: backbones may start random (see ``train.allow_random_init``).
    """
    dev = resolve_device(device)
    resolve_precision(cfg.train.precision, dev, "train")  # an unsupported pair fails before any set-up
    ctx = init_distributed(dev.type)
    try:
        return _train(cfg, Path(out_dir), resume=resume, max_steps=max_steps, dev=dev, ctx=ctx,
                      progress=ensure_progress(progress if ctx.is_main else None),
                      allow_random_init=allow_random_init)
    finally:
        shutdown(ctx)


def _train(cfg: TrainConfig, out: Path, *, resume: bool, max_steps: int | None, dev: torch.device,
           ctx: DistContext, progress: Progress, allow_random_init: bool) -> TrainResult:
    t_start = time.perf_counter()
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    if dev.type == "cuda" and ctx.distributed:
        dev = torch.device("cuda", ctx.gpu)
    # every rank checks its own view (data, --out); a failure on any rank stops all of them
    sources, plan = agreed(ctx, lambda: preflight(cfg, out, resume=resume, world_size=ctx.world_size,
                                                  allow_random_init=allow_random_init))
    check_shared_folder(ctx, out)  # rank 0 writes the outputs the others resume from
    if ctx.is_main:
        sweep_temps(out)  # temp files of a run killed mid-save
    last_path = out / "last.pt"
    # rank 0 decides whether to resume, so no rank starts over while another resumes
    resuming = broadcast_from_main(ctx, bool(resume and has_checkpoint(out)))
    # ImageNet weights only where the init checkpoint does not fill the backbones anyway
    imagenet = not resuming and not (plan is not None and plan.backbones_loaded())
    model, model_cfg = _build_model(cfg, imagenet=imagenet, allow_random_init=allow_random_init)
    dataset = ClipDataset(sources, cfg.data, cfg.augment, depth=bool(model_cfg.depth), seed=cfg.train.seed,
                          prior=bool(model_cfg.spatial_prior))
    steps_per_epoch = cfg.data.samples_per_epoch // cfg.train.batch_size
    total_steps = cfg.train.epochs * steps_per_epoch
    stop_step = total_steps if max_steps is None else min(total_steps, max_steps)

    optimizer = build_optimizer(model, cfg.optim)
    numerics = resolve_numerics(dev, cfg.train.precision, "train")
    apply_backend_policy(numerics)  # cudnn.benchmark, TF32 per precision (vosbench.precision)
    scaler = torch.amp.GradScaler(dev.type, enabled=numerics.needs_grad_scaler)
    step = 0
    before = None  # what the starting weights were trained on (vosbench.data.kind)
    if resuming:
        resume_path, extra = agreed(ctx, lambda: _load_resume_state(out, model, model_cfg, optimizer))
        chosen = broadcast_from_main(ctx, str(resume_path))  # every rank continues from rank 0's file
        agreed(ctx, lambda: _check_same_resume(resume_path, chosen))
        before = extra.get("trained_on")
        if extra.get("scaler"):
            scaler.load_state_dict(extra["scaler"])
        restore_rng(extra["rng"])
        step = int(extra["step"])
        changed = changed_keys(extra.get("train_config", {}), cfg.to_dict())
        if changed and ctx.is_main:  # the same on every rank: said once
            log.warning("%s: resuming with a config that differs from the run's in %s; the continuation will not "
                        "match an uninterrupted run", resume_path, ", ".join(changed))
    else:
        if resume and ctx.is_main:
            log.warning("%s: nothing to resume, starting a new run", last_path)
        if cfg.train.init_checkpoint:
            plan = load_init(model, cfg.train.init_checkpoint, model_cfg, strict=cfg.train.init_strict)
            before = plan.trained_on
            if ctx.is_main:
                log.info("%s", plan.table())
    model.to(dev)
    if numerics.channels_last:  # CUDA, and CPU bf16 (measured: precision.py)
        model.to(memory_format=torch.channels_last)
    # optimizer state tensors follow the parameters' device
    for st in optimizer.state.values():
        for k, v in st.items():
            if isinstance(v, torch.Tensor) and k != "step":
                st[k] = v.to(dev)
    model.train()
    net: torch.nn.Module = ClipLoss(model, model_cfg)
    if ctx.distributed:
        net = _ddp(net, model, dev, ctx)

    loss_log = LossLog(out / "log.csv", tensorboard_dir=out / "tensorboard" if cfg.train.tensorboard else None) if ctx.is_main else None
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_config(out / "config.toml", cfg)
        if loss_log is not None and step > 0:
            loss_log.load_until(step)

    saved_step = step if resuming else None  # the step of the newest checkpoint written or resumed from

    def last_good() -> str:
        if saved_step is None:
            return "no checkpoint was saved yet"
        return f"last good checkpoint: {last_path} (step {saved_step})"

    record = trained_on(data_roots(cfg.data), before)

    def save(path_step: int) -> None:
        nonlocal saved_step
        if not ctx.is_main:
            return
        bad = non_finite_tensors(model)
        if bad:  # checked before writing: a checkpoint under a final name is always a good one
            if loss_log is not None:
                loss_log.flush()
            raise NonFiniteLossError(f"the weights became non-finite by step {path_step} ({bad[0]}"
                                     f"{f' and {len(bad) - 1} more' if len(bad) > 1 else ''}); training stopped "
                                     f"without saving them; {last_good()}")
        state = {
            "step": path_step,
            "epoch": path_step // steps_per_epoch,
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict() if scaler.is_enabled() else {},
            # the lr schedule is a pure function of the step (curriculum.lr_at_step); recorded for reference
            "scheduler": {"kind": cfg.optim.schedule,
                          "lr": curriculum.lr_at_step(cfg.optim, path_step, steps_per_epoch, total_steps),
                          "lr_decay": cfg.optim.lr_decay, "lr_decay_epochs": list(cfg.optim.lr_decay_epochs),
                          "min_lr_ratio": cfg.optim.min_lr_ratio, "warmup_steps": cfg.optim.warmup_steps},
            "rng": capture_rng(),
            "train_config": cfg.to_dict(),
            "numerics": {"device": str(dev), "precision": numerics.precision},  # what ran (auto resolved)
            "trained_on": record,
        }
        try:
            save_training_checkpoint(out / f"step-{path_step}.pt", model, **state)
            link_or_copy(out / f"step-{path_step}.pt", last_path)  # one write; last.pt a hard link to it
        except CheckpointError as exc:
            kept = f"; the previous checkpoint {last_path} is intact" if last_path.exists() else ""
            raise CheckpointError(f"{exc}{kept}") from None
        saved_step = path_step
        prune_step_checkpoints(out, cfg.train.keep_checkpoints)
        if loss_log is not None:
            loss_log.flush()

    progress.start(f"train {cfg.model.preset}", total=stop_step)
    if step:
        progress.advance(step)
    last_loss = math.nan
    if loss_log is not None and loss_log.last_row:  # resumed: the loss of the step we continue from
        last_loss = float(loss_log.last_row["loss"])
    t_steps, n_timed = time.perf_counter(), 0
    loader = _run_loader(dataset, ctx, cfg, step, stop_step, dev)
    micro_batches = iter(loader)
    accumulate = cfg.train.accumulate
    while step < stop_step:
        epoch = step // steps_per_epoch
        max_skip = curriculum.max_skip_at(cfg.curriculum, epoch, cfg.train.epochs)
        own_prior = curriculum.in_final_phase(cfg.curriculum, epoch, cfg.train.epochs)
        lr = curriculum.lr_at_step(cfg.optim, step, steps_per_epoch, total_steps)
        set_lr(optimizer, lr)
        optimizer.zero_grad(set_to_none=True)
        sums: dict[str, torch.Tensor] = {}  # this rank's weighted loss and parts, on the device
        for micro in range(accumulate):
            batch = _to_device(next(micro_batches), dev)
            weight = micro_weight(batch["images"].shape[0], cfg.train.batch_size, ctx.world_size)
            # DDP all-reduces the gradients on the last micro-step only
            sync = contextlib.nullcontext() if micro == accumulate - 1 or not ctx.distributed else net.no_sync()
            with sync:
                with numerics.autocast():
                    loss, parts = net(batch, own_prior=own_prior)
                scaler.scale(loss * weight).backward()
            for k, v in {"loss": loss.detach(), **parts}.items():
                if k != "total":
                    sums[k] = sums.get(k, 0.0) + torch.as_tensor(v, device=dev).float() * weight
        # one all-reduce and one read back per step: the batch-mean loss and parts over all ranks
        names = list(sums)
        values = mean_across(ctx, torch.stack([sums[k] for k in names])).tolist()
        loss_value, parts_value = values[0], dict(zip(names[1:], values[1:]))
        if not math.isfinite(loss_value):  # before the update: the weights stay those of the last good step
            if loss_log is not None:
                loss_log.flush()  # the losses up to the last good step, whatever log_every is
            last_good = f"; last good checkpoint: {last_path}" if last_path.exists() else "; no checkpoint was saved yet"
            raise NonFiniteLossError(f"loss became {loss_value} at step {step + 1} (epoch {epoch}); training stopped{last_good}")
        if cfg.optim.grad_clip > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        step += 1
        last_loss = loss_value
        n_timed += 1
        rate = n_timed / max(time.perf_counter() - t_steps, 1e-9)
        if loss_log is not None:
            row = {"step": step, "epoch": epoch, "loss": loss_value, "lr": lr, "max_skip": max_skip,
                   "own_prior": int(own_prior), "seconds": round(time.perf_counter() - t_start, 3)}
            row.update(parts_value)
            loss_log.append(row)
            if step % cfg.train.log_every == 0:
                loss_log.flush()
        progress.update(f"epoch {epoch + 1}/{cfg.train.epochs} step {step}/{stop_step} "
                        f"loss {loss_value:.4f} {rate:.2f} it/s")
        progress.advance(1)
        if step % cfg.train.save_every == 0 or step == stop_step:
            save(step)
    del micro_batches  # DataLoader workers end here
    if step > 0 and not (out / f"step-{step}.pt").exists() and ctx.is_main:
        save(step)  # a resumed run that had already finished still leaves last.pt current
    if loss_log is not None:
        loss_log.close()
    barrier(ctx)
    return TrainResult(out, last_path, step, total_steps, last_loss, time.perf_counter() - t_start,
                       str(dev), numerics.precision)
