"""No library module reads the environment: settings are read once at an entry point.

An AST scan of ``khook_core`` for ``os.environ``, ``os.getenv`` and their ``from os import``
forms, and for pydantic-settings (whose models read the environment when constructed). Only
the modules below may read it, each for the reason given.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.paths import REPO

ALLOWED = {
    "khook_core/settings.py": "Settings.from_env: the functions' and the CLI's one read",
    "khook_core/forwarder/cli.py": "the forwarder's main",
}
READERS = frozenset({"environ", "environb", "getenv", "getenvb"})


def environment_reads(source: str) -> list[str]:
    """``line: what`` for each read of the environment (or import of pydantic-settings)."""
    found: list[str] = []
    os_names = {"os"}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            os_names |= {a.asname or a.name for a in node.names if a.name == "os"}
            found += [
                f"{node.lineno}: import {a.name}"
                for a in node.names
                if a.name.startswith("pydantic_settings")
            ]
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found += [
                f"{node.lineno}: from os import {a.name}" for a in node.names if a.name in READERS
            ]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "pydantic_settings"
        ):
            found.append(f"{node.lineno}: from {node.module} import ...")
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in READERS
            and isinstance(node.value, ast.Name)
            and node.value.id in os_names
        ):
            found.append(f"{node.lineno}: {node.value.id}.{node.attr}")
    return sorted(found)


@pytest.mark.parametrize(
    "source",
    [
        "import os\nx = os.environ.get('A')\n",
        "import os as system\nx = system.getenv('A')\n",
        "from os import environ\n",
        "from pydantic_settings import BaseSettings\n",
    ],
)
def test_the_scan_finds_every_form_of_read(source: str):
    assert environment_reads(source)


def test_the_scan_leaves_other_environ_names_alone():
    assert environment_reads("def f(environ): return environ['wsgi.input']\n") == []


def test_no_library_module_reads_the_environment():
    readers = {}
    for path in sorted((REPO / "khook_core").rglob("*.py")):
        relative = path.relative_to(REPO).as_posix()
        reads = environment_reads(path.read_text(encoding="utf-8"))
        if reads and relative not in ALLOWED:
            readers[relative] = reads
    assert readers == {}, "read settings at the entry point and pass them down"


def test_the_functions_read_it_only_through_the_settings_tree():
    for main in sorted((REPO / "functions").glob("*/main.py")):
        assert environment_reads(main.read_text(encoding="utf-8")) == [], main
        assert "transport.start(" in main.read_text(encoding="utf-8"), main


def test_the_allowed_modules_are_few_and_each_says_why():
    assert len(ALLOWED) <= 5
    assert all(reason for reason in ALLOWED.values())
    assert all(Path(p).suffix == ".py" for p in ALLOWED)
