"""What a package imports, read from its source: for tests that keep a layer pure.

Each worker's domain layer must not import the frameworks and clients its adapters
use (``faststream``, ``fastapi``, ``asyncpg``, ``redis``...); a test per worker says so
with :func:`forbidden_imports`.
"""

from __future__ import annotations

import ast
from pathlib import Path

__all__ = ["forbidden_imports", "imports_of"]


def imports_of(source: Path, *, top_level_only: bool = False) -> set[str]:
    """The top-level package names ``source`` imports (absolute imports only)."""
    tree = ast.parse(source.read_text(), filename=str(source))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def forbidden_imports(
    package: Path, forbidden: set[str], *, allowed: dict[str, set[str]] | None = None
) -> dict[str, set[str]]:
    """Per module of the folder ``package`` (relative POSIX path), the ``forbidden``
    names it imports, except those ``allowed`` for that module; empty when pure."""
    found: dict[str, set[str]] = {}
    for source in sorted(package.rglob("*.py")):
        relative = source.relative_to(package).as_posix()
        bad = (imports_of(source) & forbidden) - (allowed or {}).get(relative, set())
        if bad:
            found[relative] = bad
    return found
