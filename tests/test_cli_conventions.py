"""CLI conventions: --version, flags without a value placeholder, --threads, error lines."""

from __future__ import annotations

import re

import pytest
import torch
import typer
from typer.testing import CliRunner

from vosbench import __version__
from vosbench_cli.main import app

runner = CliRunner()


def _commands(group, path=()):
    for name, command in group.commands.items():
        yield (*path, name)
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))


def test_version():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"vosbench {__version__}"


def test_no_help_shows_a_bool_placeholder():
    paths = [(), *_commands(typer.main.get_command(app))]
    assert ("infer",) in paths and ("prepare", "synthetic") in paths
    for path in paths:
        res = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert res.exit_code == 0, (path, res.output)
        assert "<bool>" not in res.output, path
        assert re.search(r"--help\s+Show this message", res.output), path


def test_threads_sets_torch_threads_and_refuses_zero(tmp_path):
    before = torch.get_num_threads()
    try:
        res = runner.invoke(app, ["infer", "--checkpoint", str(tmp_path / "no.pt"), "--data", str(tmp_path),
                                  "--out", str(tmp_path / "o"), "--threads", "1"])
        assert res.exit_code == 1 and torch.get_num_threads() == 1  # set before the (failing) run
    finally:
        torch.set_num_threads(before)
    res = runner.invoke(app, ["infer", "--checkpoint", "x.pt", "--data", ".", "--out", "o", "--threads", "0"])
    assert res.exit_code == 1 and res.output == "error: --threads must be 1 or more, got 0\n"


@pytest.mark.parametrize("verb", [["evaluate", "--results", "{t}/r", "--data", "{t}/d"],
                                  ["infer", "--checkpoint", "{t}/c.pt", "--data", "{t}", "--out", "{t}/o"]])
def test_error_is_the_first_and_only_line(tmp_path, verb):
    res = runner.invoke(app, [a.format(t=tmp_path) for a in verb])
    assert res.exit_code == 1 and res.output.startswith("error: ") and res.output.count("\n") == 1, repr(res.output)
