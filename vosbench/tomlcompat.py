"""``tomllib`` on Python 3.11+, its backport ``tomli`` on 3.10 (the declared minimum).

Import it as ``from vosbench.tomlcompat import tomllib``; tests/test_python_minimum.py checks that
no module imports ``tomllib`` (or any other module newer than the minimum) directly.
"""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["tomllib"]
