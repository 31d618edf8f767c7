"""The CLI registers every verb without loading torch (``vosbench --help`` must start fast)."""

import subprocess
import sys


def test_cli_import_loads_every_verb_but_not_torch() -> None:
    code = (
        "import sys, vosbench_cli.main\n"
        "names = sorted(c.name for c in vosbench_cli.main.app.registered_commands)\n"
        "groups = sorted(g.name for g in vosbench_cli.main.app.registered_groups)\n"
        "print(' '.join(names + groups))\n"
        "print('torch' in sys.modules, 'timm' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    verbs, heavy = out.strip().splitlines()
    assert heavy == "False False"
    for verb in ("train", "infer", "evaluate", "models", "ablate", "package-submission", "visualize",
                 "quickstart", "dataset-info", "prepare"):
        assert verb in verbs.split(), verb


def test_help_paragraphs_are_reflowed() -> None:
    """Typer prints a docstring's line breaks as is: every verb's help is one line per paragraph."""
    import re

    from vosbench_cli.main import _reflow, app

    assert _reflow("  One\n  two.\n\n  Three\n   four.\n") == "One two.\n\nThree four."
    commands = list(app.registered_commands)
    for group in app.registered_groups:
        commands += group.typer_instance.registered_commands
    assert len(commands) >= 14
    for command in commands:
        assert command.help and not re.search(r"(?<!\n)\n(?!\n)", command.help), command.name
