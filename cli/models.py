"""`vosbench models`: the registered model presets, their parts and parameter counts."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from vosbench_cli.common import console, handle_errors


def models(
    names: Annotated[list[str] | None, typer.Argument(help="Presets to show (default: all).")] = None,
    config: Annotated[
        bool, typer.Option("--config", help="Also print each preset's full config as JSON.")
    ] = False,
) -> None:
    """List model presets (STM, SCM, D-STM, their ablation rungs and tiny CPU variants) with parameter counts,
    and the SAM-class trackers from transformers that run as hf: members.

    Parts: spatial = SCM spatial constraint, aspp, refine = BASNet-style refine, depth = D-STM input.

    Example: vosbench models scm-tiny dstm-tiny --config
    """
    from vosbench.models.registry import get_preset  # torch/timm load only when the verb runs
    from vosbench.models.summary import summarize_presets

    with handle_errors():
        summaries = summarize_presets(names)
        configs = [get_preset(s.name).to_dict() for s in summaries] if config else []
    table = Table(title=f"{len(summaries)} model presets")
    table.add_column("preset", no_wrap=True, style="bold")
    table.add_column("backbone", no_wrap=True)
    table.add_column("key/value", justify="right")
    table.add_column("parts")
    table.add_column("loss")
    table.add_column("params", justify="right")
    wide = console.width >= 140  # the description column only when it fits
    if wide:
        table.add_column("description")
    for s in summaries:
        row = [
            s.name,
            s.backbone,
            f"{s.key_dim}/{s.value_dim}",
            s.parts_text,
            "+".join(s.losses),
            f"{s.parameters / 1e6:.1f}M",
        ]
        table.add_row(*row, *([s.description] if wide else []))
    console.print(table)
    console.print(_hf_table())
    for cfg in configs:
        console.print_json(json.dumps(cfg))


def _hf_table() -> Table:
    """The transformers video trackers an ``hf:`` member spec runs (vosbench.infer.hf_video)."""
    from importlib.metadata import PackageNotFoundError, version

    from vosbench.infer.hf_video import FAMILIES, INSTALL_HINT

    try:
        installed = f"transformers {version('transformers')}"
    except PackageNotFoundError:
        installed = f"transformers not installed: {INSTALL_HINT}"
    table = Table(title=f"hf: video trackers ({installed})")
    wide = console.width >= 120
    cols = ("family", "model_type", "example spec", *(("transformers class",) if wide else ()))
    for col in cols:
        table.add_column(col, no_wrap=col != "family")
    for fam in FAMILIES:
        types = ", ".join(fam.model_types) if wide else fam.model_types[0]
        table.add_row(fam.name, types, f"hf:{fam.example}", *((fam.model_class,) if wide else ()))
    table.caption = "hf:<hub id or save_pretrained folder> wherever a checkpoint goes (infer, --ensemble, recipes)"
    return table


def register(app: typer.Typer) -> None:
    app.command("models")(models)
