"""`vosbench prepare ...`: the group every data-preparation verb registers into.

Sub-verbs live in ``cli/prepare_<source>.py`` modules, each with ``register(prepare_app)``.
"""

from __future__ import annotations

import importlib

import typer

from vosbench_cli.common import VosbenchGroup

prepare_app = typer.Typer(
    cls=VosbenchGroup,
    help="Download, extract, validate or generate datasets in the DAVIS-2017 layout.",
    no_args_is_help=True,
)

SUBMODULES = (
    "vosbench_cli.prepare_davis",
    "vosbench_cli.prepare_youtube",
    "vosbench_cli.prepare_mosev2",
    "vosbench_cli.prepare_sav",
    "vosbench_cli.prepare_static",
    "vosbench_cli.prepare_synthetic",
    "vosbench_cli.prepare_depth",
)


def register(app: typer.Typer) -> None:
    for name in SUBMODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(prepare_app)
    app.add_typer(prepare_app, name="prepare")
