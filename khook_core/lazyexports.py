"""Names a module hands out from another module on first use.

A hot module (``state.base``, ``storm.records``, ``silencing.windows``) keeps exporting the
records and helpers that moved to a sibling, so every import path still works, without
building them at every cold start: they load when something first asks for them.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable
from typing import Any


def forwarding(module: str, source: str, names: Iterable[str]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for ``module``: each of ``names`` comes from the module
    ``source`` on first use and is then kept in ``module`` (later lookups are plain)."""
    exported = frozenset(names)

    def __getattr__(name: str) -> Any:
        if name not in exported:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(source), name)
        setattr(sys.modules[module], name, value)
        return value

    return __getattr__
