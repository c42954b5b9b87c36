"""Import boundaries of ``khook_core/sources``: sources are independent of each other.

A source module may import the shared modules (``base``, the contract; ``registry``, the
loader; ``fieldmap``, the field-mapping language and the generic event) and its own parts
(``gcp`` → ``gcp_build``, named ``<source>_<part>``) and nothing else of its package, and no
source module (shared ones included) may import ``khook_core.dispatch``. The rules are checked
on the source text with ``ast``, so an import inside a function or under ``TYPE_CHECKING``
counts as much as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import khook_core.sources

PACKAGE = "khook_core.sources"
PACKAGE_DIR = Path(khook_core.sources.__file__).resolve().parent
SHARED = frozenset({"__init__", "base", "registry", "fieldmap", "jsonwords"})
"""Modules every source may import; each of them imports no source module either."""
FORBIDDEN = ("khook_core.dispatch",)
"""Packages no module of ``khook_core/sources`` may import: sources and dispatch are independent."""
MODULES = sorted(p.stem for p in PACKAGE_DIR.glob("*.py"))


def imported_modules(tree: ast.Module) -> set[str]:
    """Every module ``tree`` (a module of ``khook_core.sources``) imports, as absolute names.

    ``from package import name`` yields ``package.name`` as well as ``package``, because ``name``
    may be a submodule (``from khook_core.sources import webhook``).
    """
    found: set[str] = set()
    package_parts = PACKAGE.split(".")  # a module's package, and the package of __init__ too
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package_parts[: len(package_parts) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return found


def violations(module: str, imports: set[str]) -> list[str]:
    """The imports of ``khook_core.sources.<module>`` that break a boundary, sorted."""
    bad = set()
    for name in imports:
        if name.startswith(f"{PACKAGE}."):
            target = name.removeprefix(f"{PACKAGE}.").split(".", 1)[0]
            own_part = target.startswith(f"{module}_")
            if target in MODULES and target not in SHARED and target != module and not own_part:
                bad.add(f"{PACKAGE}.{target}")
        if any(name == f or name.startswith(f"{f}.") for f in FORBIDDEN):
            bad.add(name)
    return sorted(bad)


def parse(module: str) -> ast.Module:
    path = PACKAGE_DIR / f"{module}.py"
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def test_every_built_in_source_is_checked() -> None:
    assert {"alertmanager", "cdc", "kafka", "kubernetes", "webhook"} <= set(MODULES)
    assert set(MODULES) >= SHARED


@pytest.mark.parametrize("module", MODULES)
def test_a_source_module_imports_no_other_source_module_nor_dispatch(module: str) -> None:
    bad = violations(module, imported_modules(parse(module)))
    assert not bad, (
        f"{PACKAGE}.{module} imports {', '.join(bad)}: sources may import only "
        f"{', '.join(sorted(SHARED - {'__init__'}))} from {PACKAGE}, and never dispatch; "
        f"move what they share into {PACKAGE}.fieldmap (or base)"
    )


@pytest.mark.parametrize(
    "source",
    [
        "from khook_core.sources.webhook import FieldRule",
        "from khook_core.sources import webhook",
        "from . import webhook",
        "from .webhook import FieldRule",
        "import khook_core.sources.webhook",
        "def late() -> None:\n    from khook_core.sources.webhook import FieldRule",
        "from khook_core.dispatch.webhook import WebhookDispatcher",
        "import khook_core.dispatch",
    ],
)
def test_the_check_sees_every_spelling_of_a_forbidden_import(source: str) -> None:
    assert violations("kafka", imported_modules(ast.parse(source)))


@pytest.mark.parametrize(
    "source",
    [
        "from khook_core.sources.fieldmap import FieldRule",
        "from khook_core.sources.base import Dropped, SourceContext",
        "from khook_core.sources import Dropped",
        "from . import base",
        "from khook_core.event import Event",
        "from khook_core.dispatcher_notes import x",
    ],
)
def test_the_check_allows_the_shared_modules_and_the_rest_of_khook_core(source: str) -> None:
    assert violations("kafka", imported_modules(ast.parse(source))) == []
