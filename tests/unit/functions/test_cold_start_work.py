"""A function's cold start does no work only other paths need.

Creating a dataclass compiles its generated ``__init__``, ``__repr__``, ``__eq__`` (and, frozen,
``__setattr__``, ``__delattr__``, ``__hash__``): a few milliseconds a class on a cold start.
The records of the console, the CLI, live config, silences, incidents, approvals and finished
tasks, storm control's held-back summaries, and the classes of a configured maintenance window
live in modules of their own, loaded by what builds them, so importing a function's ``main.py``
(with the project's configuration, as deployed) creates none of them; and each it does create
has a docstring, or ``dataclass`` renders its signature into one (``inspect.signature``).

Building a pydantic model reads the signature of each field's ``default_factory``; for a
builtin such as ``list`` ``inspect`` tokenizes its text signature, and the tokenizer's first use
compiles its patterns (~2 ms): list fields use ``configmodel.new_list`` instead.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys

import pytest
from pydantic import BaseModel

import khook_core
from tests.support.functions import SIGNATURES as FUNCTIONS
from tests.support.paths import REPO

RARELY_USED = (
    ("khook_core.state", "FiringFilter"),
    ("khook_core.state", "FiringPage"),
    ("khook_core.state", "FiringCount"),
    ("khook_core.state", "CircuitRecord"),
    ("khook_core.state", "ConfigSnapshot"),
    ("khook_core.state", "SilenceRecord"),
    ("khook_core.state", "Incident"),
    ("khook_core.state", "ApprovalRecord"),
    ("khook_core.tracking", "Finding"),
    ("khook_core.silencing", "Occurrence"),
    ("khook_core.silencing", "MaintenanceWindow"),
    ("khook_core.storm", "Summary"),
    ("khook_core.storm", "Backlog"),
)
"""(package, class name): dataclasses no function's start builds, whatever module holds them."""

PROBE = """
import json, sys
import functions_framework
functions_framework.create_app("handle", sys.argv[1], sys.argv[2])
created = sorted(
    f"{value.__module__}:{value.__qualname__}"
    for name, module in list(sys.modules.items()) if name.startswith("khook_core")
    for value in vars(module).values()
    if isinstance(value, type) and "__dataclass_fields__" in vars(value)
    and value.__module__ == name
)
undocumented = sorted(
    f"{value.__module__}:{value.__qualname__}"
    for name, module in list(sys.modules.items()) if name.startswith("khook_core")
    for value in vars(module).values()
    if isinstance(value, type) and "__dataclass_fields__" in vars(value)
    and value.__module__ == name and (value.__doc__ or "").startswith(value.__name__ + "(")
)
print(json.dumps({"created": created, "undocumented": undocumented}))
"""


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_a_function_start_creates_no_rarely_used_record(name: str) -> None:
    env = {
        **os.environ,
        "KHOOK_CONFIG_DIR": str(REPO / "config"),
        "KHOOK_STATE": "memory",
        "KHOOK_ALERTMANAGER_TOKEN": "t",
        "KHOOK_WEBHOOK_TOKEN": "t",
    }
    main = str(REPO / "functions" / name / "main.py")
    done = subprocess.run(
        [sys.executable, "-c", PROBE, main, FUNCTIONS[name]],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=REPO,
        env=env,
    )
    found = json.loads(done.stdout.splitlines()[-1])
    created = [tuple(c.split(":")) for c in found["created"]]
    assert len(created) > 10  # the probe sees the dataclasses the start does create
    rare = [
        f"{module}.{cls}"
        for module, cls in created
        for package, rarely in RARELY_USED
        if cls == rarely and module.startswith(package + ".")
    ]
    assert rare == []
    # A dataclass without a docstring gets one from ``inspect.signature`` as it is created.
    assert found["undocumented"] == []


def test_no_model_field_has_a_builtin_default_factory() -> None:
    models: list[type[BaseModel]] = []
    for info in pkgutil.walk_packages(khook_core.__path__, "khook_core."):
        if info.name.startswith(("khook_core.cli", "khook_core.forwarder")):
            continue  # never on a function's path
        module = importlib.import_module(info.name)
        models += [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, BaseModel)
            and value.__module__ == info.name
        ]
    assert len(models) > 20
    builtin = [
        f"{model.__module__}.{model.__qualname__}.{name}"
        for model in models
        for name, info in model.model_fields.items()
        if getattr(info.default_factory, "__module__", None) == "builtins"
        and info.default_factory is not dict  # no text signature: nothing to tokenize
    ]
    assert builtin == []
