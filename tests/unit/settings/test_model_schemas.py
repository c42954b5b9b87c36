"""Every configuration and event model keeps its fields, defaults and JSON schemas.

The models are built from their class annotations; this pins what pydantic makes of them
(each field's type, whether it is required, its default, the validation and serialization
JSON schemas) against ``model_schemas.json``, so a change in how the annotations are written
(a string or the type itself) cannot change a model unnoticed.
"""

import importlib
import inspect
import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

MODULES = (
    "khook_core.configmodel",
    "khook_core.envsettings",
    "khook_core.event",
    "khook_core.hooks",
    "khook_core.mapping",
    "khook_core.redaction.rules",
    "khook_core.reportconfig",
    "khook_core.settings",
    "khook_core.sources.alertmanager",
    "khook_core.sources.base",
    "khook_core.sources.cdc",
    "khook_core.sources.fieldmap",
    "khook_core.sources.gcp",
    "khook_core.sources.kafka",
    "khook_core.sources.kubernetes",
    "khook_core.sources.registry",
    "khook_core.sources.webhook",
    "khook_core.storm.config",
    "khook_core.transport.http",
)
PINNED = Path(__file__).with_name("model_schemas.json")
ADDRESS = re.compile(r" at 0x[0-9a-f]+")


def _schema(model: type[BaseModel], mode: str) -> Any:
    try:
        return model.model_json_schema(mode=mode)  # type: ignore[arg-type]
    except Exception as error:  # a model with a field JSON schema cannot describe
        return f"{type(error).__name__}"


def describe(model: type[BaseModel]) -> dict[str, Any]:
    """What pydantic built for ``model``: its fields and both JSON schemas."""
    return {
        "fields": {
            name: {
                "annotation": ADDRESS.sub("", repr(field.annotation)),
                "required": field.is_required(),
                "default": ADDRESS.sub("", repr(field.default)),
                "alias": field.alias,
            }
            for name, field in model.model_fields.items()
        },
        "validation": _schema(model, "validation"),
        "serialization": _schema(model, "serialization"),
    }


def models() -> dict[str, dict[str, Any]]:
    """Every model class defined in ``MODULES``, by qualified name."""
    found = {}
    for name in MODULES:
        module = importlib.import_module(name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseModel) and value.__module__ == name:
                found[f"{name}.{value.__qualname__}"] = describe(value)
    return found


def test_models_are_pinned() -> None:
    pinned = json.loads(PINNED.read_text(encoding="utf-8"))
    built = json.loads(json.dumps(models(), default=repr))
    assert sorted(built) == sorted(pinned)
    for name, description in pinned.items():
        assert built[name] == description, name


if __name__ == "__main__":  # pragma: no cover - rewrites the pinned file after a deliberate change
    PINNED.write_text(
        json.dumps(models(), default=repr, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    pytest.main([__file__, "-q"])
