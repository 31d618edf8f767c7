"""The `vosbench` Typer app. Each verb lives in its own module and registers itself here."""

from __future__ import annotations

import importlib

import typer

from cli.common import setup_logging

app = typer.Typer(
    name="vosbench",
    help="Semi-supervised video object segmentation: prepare data, train STM/SCM/D-STM, infer, evaluate, ablate, submit.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Verb modules; each defines `register(app)`. A verb module keeps torch-heavy imports inside its
# command function, so `vosbench --help` and the light verbs start without loading torch.
VERB_MODULES = (
    "cli.prepare",
    "cli.dataset_info",
    "cli.evaluate",
    "cli.models",
    "cli.train",
    "cli.infer",
    "cli.ablate",
    "cli.submission",
    "cli.visualize",
    "cli.quickstart",
)


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    setup_logging(verbose)


def _register_all() -> None:
    for name in VERB_MODULES:
        importlib.import_module(name).register(app)


_register_all()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
