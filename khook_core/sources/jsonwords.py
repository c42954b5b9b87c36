"""Validation messages in the words of JSON, the format the sender wrote.

A 422 body says ``alerts[0].labels: expected an object, got an array``: JSON type names, not
Python's (``dict``, ``list``, ``NoneType``), and paths as a JSON reader writes them (``[0]``
joined to the name before it, never a bare ``[0].`` or ``alerts.0``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from pydantic_core import ErrorDetails

EXPECTED: Final = {
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "typed_dict_type": "an object",
    "list_type": "an array",
    "tuple_type": "an array",
    "string_type": "a string",
    "int_type": "a number",
    "int_parsing": "a number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
}
"""pydantic's error types that mean "wrong JSON type", and the type that was expected."""


def json_type(value: Any) -> str:
    """The JSON name of ``value``'s type, with its article: ``an array``, ``null``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def json_path(parts: Iterable[int | str], prefix: str = "") -> str:
    """``alerts[0].labels`` from ``("alerts", 0, "labels")``, after ``prefix`` if given."""
    path = prefix
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def message(error: ErrorDetails) -> str:
    """One pydantic error in JSON words."""
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    if kind in EXPECTED:
        return f"expected {EXPECTED[kind]}, got {json_type(error.get('input'))}"
    return error["msg"]
