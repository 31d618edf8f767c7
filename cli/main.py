"""The `vosbench` Typer app. Each verb lives in its own module and registers itself here."""

from __future__ import annotations

import importlib
import inspect

import typer

from vosbench_cli.common import VosbenchGroup, setup_logging

app = typer.Typer(
    name="vosbench",
    cls=VosbenchGroup,
    help="Semi-supervised video object segmentation: prepare data, train STM/SCM/D-STM, infer, evaluate, ablate, submit.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Verb modules; each defines `register(app)`. A verb module keeps torch-heavy imports inside its
# command function, so `vosbench --help` and the light verbs start without loading torch.
VERB_MODULES = (
    "vosbench_cli.prepare",
    "vosbench_cli.dataset_info",
    "vosbench_cli.evaluate",
    "vosbench_cli.models",
    "vosbench_cli.convert",
    "vosbench_cli.train",
    "vosbench_cli.infer",
    "vosbench_cli.merge",
    "vosbench_cli.ablate",
    "vosbench_cli.submission",
    "vosbench_cli.visualize",
    "vosbench_cli.quickstart",
)


def _print_version(value: bool) -> None:
    if value:
        from vosbench import __version__

        typer.echo(f"vosbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True,
                                 callback=_print_version),
) -> None:
    setup_logging(verbose)


def _reflow(doc: str) -> str:
    """One line per paragraph: Typer's help keeps a docstring's line breaks, so wrapped source lines
    would print as ragged half-lines; the terminal wraps the paragraphs instead."""
    paragraphs = [" ".join(p.split()) for p in inspect.cleandoc(doc).split("\n\n")]
    return "\n\n".join(p for p in paragraphs if p)


def _reflow_help(typer_app: typer.Typer) -> None:
    for command in typer_app.registered_commands:
        doc = command.help or (command.callback.__doc__ if command.callback else None)
        if doc:
            command.help = _reflow(doc)
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _reflow_help(group.typer_instance)


def _register_all() -> None:
    for name in VERB_MODULES:
        importlib.import_module(name).register(app)
    _reflow_help(app)


_register_all()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
