"""The declared ``requires-python`` minimum holds for every source file, without that Python installed.

CI runs one interpreter (3.11 here); these checks stand in for a run on the minimum: every file
parses with the minimum's grammar, and no module imports a standard-library module, or uses a
standard-library name, that the minimum lacks, except inside a ``sys.version_info`` guard (the
``tomli`` fallback of vosbench/tomlcompat.py). The table lists what 3.11 and 3.12 added.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import REPO
from vosbench.tomlcompat import tomllib

# standard-library modules and names by the version that added them (What's New in Python 3.11, 3.12)
NEW_MODULES = {(3, 11): {"tomllib", "wsgiref.types"}}
NEW_NAMES = {
    (3, 11): {
        "datetime.UTC", "enum.StrEnum", "enum.verify", "enum.EnumCheck", "enum.ReprEnum", "typing.Self",
        "typing.LiteralString", "typing.Never", "typing.assert_never", "typing.assert_type", "typing.reveal_type",
        "typing.Required", "typing.NotRequired", "typing.dataclass_transform", "asyncio.TaskGroup",
        "asyncio.timeout", "hashlib.file_digest", "contextlib.chdir", "operator.call", "logging.getLevelNamesMapping",
    },
    (3, 12): {"itertools.batched", "typing.override", "typing.TypeAliasType", "pathlib.Path.walk"},
}
NEW_BUILTINS = {(3, 11): {"ExceptionGroup", "BaseExceptionGroup"}}
SOURCE_DIRS = ("vosbench", "cli", "tests", "benchmarks")


def _minimum() -> tuple[int, int]:
    spec = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["requires-python"]
    m = re.fullmatch(r">=\s*3\.(\d+)", spec.strip())
    assert m, f"requires-python {spec!r}: expected '>=3.N'"
    return 3, int(m.group(1))


def _sources() -> list[Path]:
    return sorted(p for d in SOURCE_DIRS for p in (REPO / d).rglob("*.py"))


def _guarded(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Inside ``if sys.version_info >= ...:`` (the fallback's branch may import the new module)."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "version_info" in ast.unparse(node.test):
            return True
    return False


def _too_new(minimum: tuple[int, int], table: dict[tuple[int, int], set[str]]) -> set[str]:
    return {name for version, names in table.items() if version > minimum for name in names}


def test_requires_python_is_what_the_package_metadata_and_ruff_say():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    minimum = _minimum()
    assert project["tool"]["ruff"]["target-version"] == f"py{minimum[0]}{minimum[1]}"
    if minimum < (3, 11):  # tomllib's backport is a dependency exactly where tomllib is missing
        assert "tomli>=1.1; python_version < '3.11'" in project["project"]["dependencies"]


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(REPO)))
def test_source_runs_on_the_declared_minimum(path: Path):
    minimum = _minimum()
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text, filename=str(path), feature_version=minimum)  # a newer syntax is a SyntaxError
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    modules, names, builtins = (_too_new(minimum, t) for t in (NEW_MODULES, NEW_NAMES, NEW_BUILTINS))
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found = [a.name for a in node.names if a.name in modules]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found = [node.module] if node.module in modules else [
                f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in names]
        elif isinstance(node, ast.Attribute):
            dotted = ast.unparse(node)
            found = [dotted] if dotted in names else []
        elif isinstance(node, ast.Name) and node.id in builtins:
            found = [node.id]
        elif isinstance(node, ast.TryStar):  # pragma: no cover - feature_version already refuses it
            found = ["except*"]
        else:
            found = []
        if found and not _guarded(node, parents):
            problems.append(f"{path.relative_to(REPO)}:{node.lineno}: {', '.join(found)} needs Python > {minimum}")
    assert not problems, problems


def test_the_checks_catch_what_they_claim(tmp_path):
    """The checker refuses 3.11-only code on a 3.10 minimum (so a green run means something)."""
    with pytest.raises(SyntaxError):
        ast.parse("try:\n    pass\nexcept* ValueError:\n    pass\n", feature_version=(3, 10))
    assert "tomllib" in _too_new((3, 10), NEW_MODULES) and "datetime.UTC" in _too_new((3, 10), NEW_NAMES)
    tree = ast.parse("import sys\nif sys.version_info >= (3, 11):\n    import tomllib\nimport tomllib\n")
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    imports = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Import) and n.names[0].name == "tomllib"),
                     key=lambda n: n.lineno)
    assert [_guarded(n, parents) for n in imports] == [True, False]
