"""The verification core stays pure: bytes in, verdict out. Fetching belongs to hotfix_operator.adapters."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import hotfix_operator.provenance

PACKAGE = Path(hotfix_operator.provenance.__file__).parent
PACKAGE_NAME = ("hotfix_operator", "provenance")
# Anything that talks to a network, a cluster, GitHub or another process.
IO_LIBRARIES = frozenset(
    {"httpx", "socket", "ssl", "subprocess", "kubernetes", "github", "kopf", "requests", "urllib3"}
)


def absolute_imports(module: Path) -> set[str]:
    """Every module `module` imports, relative imports resolved against hotfix_operator.provenance."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text(), filename=str(module))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            # `from .x` is hotfix_operator.provenance.x, `from ..x` is hotfix_operator.x.
            parent = PACKAGE_NAME[: len(PACKAGE_NAME) + 1 - node.level] if node.level else ()
            names.add(".".join([*parent, *([node.module] if node.module else [])]))
    return names


@pytest.mark.parametrize("module", sorted(PACKAGE.glob("*.py")), ids=lambda path: path.name)
def test_provenance_imports_no_adapter_and_no_io_library(module: Path) -> None:
    imported = absolute_imports(module)
    assert not {name for name in imported if name.startswith("hotfix_operator.adapters")}
    assert not {name for name in imported if name.split(".")[0] in IO_LIBRARIES}
    assert "http.client" not in imported and "urllib.request" not in imported
