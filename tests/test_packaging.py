"""What the wheel installs: the library and the CLI under its own name, nothing called plain ``cli``."""

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


def _setuptools() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def test_every_library_package_is_listed_and_the_cli_has_its_own_name() -> None:
    cfg = _setuptools()
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "vosbench").rglob("__init__.py")}
    listed = set(cfg["packages"])
    assert listed == on_disk | {"vosbench_cli"}
    assert not any(name == "cli" or name.startswith("cli.") for name in listed)
    assert cfg["package-dir"] == {"vosbench_cli": "cli"}
    assert (REPO / "cli" / "main.py").is_file()


def test_console_script_points_at_the_renamed_package() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["scripts"]["vosbench"] == "vosbench_cli.main:main"


def test_no_module_imports_the_cli_by_its_folder_name() -> None:
    offenders = []
    for path in [*REPO.glob("cli/*.py"), *REPO.glob("vosbench/**/*.py"), *REPO.glob("tests/**/*.py")]:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            stripped = line.strip()
            if stripped.startswith(("from cli.", "from cli import", "import cli.", "import cli ")) or stripped == "import cli":
                offenders.append(f"{path.relative_to(REPO)}:{n}")
    assert offenders == []
