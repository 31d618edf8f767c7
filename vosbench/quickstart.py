"""The end-to-end quickstart: embedded dataset → pretrain on stills → train a tiny model → infer →
evaluate → package.

Every step is a library call the other verbs also make; finished steps are reused on a re-run
(the dataset when its manifest's generator record matches ``profile`` and ``seed``, else the run refuses; both training stages through ``resume``, inference per
sequence as long as ``results.checkpoint`` names the checkpoint that wrote them). The video stage
starts from the still-image stage's ``last.pt``; ``train.init`` records which one, and a video
stage begun from another (the pretraining went on) starts again.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from vosbench.fsutil import atomic_dir, atomic_write_text, sha256_file
from vosbench.metrics import EvaluationResult
from vosbench.progress import Progress, ensure_progress


def default_config() -> Path:
    """The packaged quickstart training config (a short ``stm-tiny`` run)."""
    return Path(str(resources.files("vosbench.resources") / "quickstart.toml"))


def default_pretrain_config() -> Path:
    """The packaged still-image stage that :func:`default_config` starts from (docs/cpu-recipe.md)."""
    return Path(str(resources.files("vosbench.resources") / "quickstart-pretrain.toml"))


def training_scale(config: str | os.PathLike, data: str | os.PathLike, split: str = "val") -> float:
    """The scale a config trains at on ``data``: the mean of ``data.short_side`` over the frames'
    short side (the tiny configs train at half the embedded frames' height: 0.5 on ``small``)."""
    from vosbench.data.davis import DavisDataset
    from vosbench.train.run import resolve_run_config

    cfg = resolve_run_config(config, data=Path(data))
    dataset = DavisDataset(data, split)
    seq = dataset.sequence(dataset.sequence_names[0])
    return round(sum(cfg.data.short_side) / 2 / min(seq.size), 3)


def worst_sequence(evaluation: EvaluationResult) -> tuple[str, float]:
    """The sequence with the lowest J&F (the mean of its objects' J and F means) and that J&F."""
    from vosbench.visualize import mean_jf

    scored = [(sum(mean_jf(s)) / 2, s.name) for s in evaluation.sequences if s.j.size]
    if not scored:
        return "", float("nan")
    jf, name = min(scored)
    return name, jf


@dataclass
class QuickstartResult:
    data: Path
    checkpoint: Path
    results: Path
    submission: Path
    evaluation: EvaluationResult
    baseline: EvaluationResult  # "copy the first-frame mask" on the same split
    train_steps: int  # of the video stage
    train_batch: int
    precision: str  # of the training, as it ran (auto resolved)
    worst_sequence: str  # the val sequence with the lowest J&F
    worst_jf: float
    train_seconds: float
    infer_fps: float
    submission_bytes: int
    device: str = ""  # the device training and inference ran on
    infer_precision: str = ""
    pretrain_steps: int = 0  # of the still-image stage (0: none)
    method: str = ""  # the video stage's model preset, as its table row names it


def run_quickstart(
    out: str | os.PathLike,
    *,
    profile: str = "small",
    seed: int = 0,
    config: str | os.PathLike | None = None,
    pretrain_config: str | os.PathLike | None = None,
    pretrain: bool = True,
    max_steps: int | None = None,
    device: str = "auto",
    precision: str | None = None,
    split: str = "val",
    progress: Progress | None = None,
    threads: int | None = None,
) -> QuickstartResult:
    """Run the whole pipeline under ``out`` (``data/``, ``pretrain/``, ``train/``, ``results/``,
    ``baseline/``, zip).

    ``pretrain_config``: the still-image stage the video stage starts from (None: the packaged one
    when ``config`` is None too, else none); ``pretrain=False`` skips it. ``max_steps`` caps each
    stage. ``precision`` (None = the configs' ``train.precision`` for training, ``auto`` for
    inference) applies to all; ``threads`` (None = the configs' ``train.threads``) to training.
    """
    from vosbench.data.synthetic import generate_synthetic
    from vosbench.data.synthetic.generate import check_synthetic_root
    from vosbench.data.synthetic.baselines import write_baseline
    from vosbench.infer.run import InferOptions, infer_dataset
    from vosbench.metrics import evaluate_results
    from vosbench.submission import package_submission
    from vosbench.train.checkpointing import has_checkpoint
    from vosbench.train.run import resolve_run_config, train_from_config

    out = Path(out)
    progress = ensure_progress(progress)
    data = out / "data"
    if (data / "manifest.json").is_file():
        check_synthetic_root(data, profile, seed)  # a dataset of another --profile/--seed is not this run's
    else:
        generate_synthetic(data, profile=profile, seed=seed, progress=progress)
    common = [f'train.precision="{precision}"'] if precision is not None else []
    common += [f"train.threads={threads}"] if threads is not None else []
    if pretrain_config is None and config is None:
        pretrain_config = default_pretrain_config()
    train_dir = out / "train"
    init: list[str] = []
    pretrained = None
    if pretrain and pretrain_config is not None:
        pre_dir = out / "pretrain"
        pretrained = train_from_config(pretrain_config, data=data, out=pre_dir, resume=has_checkpoint(pre_dir),
                                       max_steps=max_steps, device=device, overrides=common, progress=progress)
        init = [f"train.init_checkpoint={json.dumps(str(pretrained.last_checkpoint))}"]
        # a video stage begun from another pretraining checkpoint would not be this run's: start it again
        source, marker = sha256_file(pretrained.last_checkpoint), out / "train.init"
        if not (marker.is_file() and marker.read_text().strip() == source):
            shutil.rmtree(train_dir, ignore_errors=True)
            atomic_write_text(marker, source + "\n")
    trained = train_from_config(
        config or default_config(),
        data=data,
        out=train_dir,
        resume=has_checkpoint(train_dir),
        max_steps=max_steps,
        device=device,
        overrides=common + init,
        progress=progress,
    )
    results = out / "results"
    # Masks written by another checkpoint (training went on, or another --config) are stale.
    source, marker = sha256_file(trained.last_checkpoint), out / "results.checkpoint"
    if not (marker.is_file() and marker.read_text().strip() == source):
        shutil.rmtree(results, ignore_errors=True)
        atomic_write_text(marker, source + "\n")
    scale = training_scale(config or default_config(), data, split)
    summary = infer_dataset(str(trained.last_checkpoint), data, split, "480p", results,
                            InferOptions(device=device, scales=(scale,), precision=precision or "auto"), progress)
    evaluation = evaluate_results(data, results, split, progress=progress)
    baseline_dir = out / "baseline-copy"
    if not baseline_dir.is_dir():
        with atomic_dir(baseline_dir) as tmp:
            write_baseline(data, tmp, "copy", split=split)
    baseline = evaluate_results(data, baseline_dir, split, progress=progress)
    zip_path = out / f"submission-{split}.zip"
    packaged = package_submission(results, data, split, zip_path, progress=progress)
    worst, worst_jf = worst_sequence(evaluation)
    return QuickstartResult(
        data=data,
        checkpoint=trained.last_checkpoint,
        results=results,
        submission=zip_path,
        evaluation=evaluation,
        baseline=baseline,
        train_steps=trained.step,
        train_batch=resolve_run_config(train_dir / "config.toml").train.batch_size,
        precision=trained.precision,
        worst_sequence=worst,
        worst_jf=worst_jf,
        train_seconds=trained.seconds + (pretrained.seconds if pretrained else 0.0),
        infer_fps=summary.fps,
        submission_bytes=packaged.size_bytes,
        device=trained.device,
        infer_precision=summary.precision,
        pretrain_steps=pretrained.step if pretrained else 0,
        method=resolve_run_config(train_dir / "config.toml").model.preset,
    )
