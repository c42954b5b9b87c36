"""Validating YAML documents with pydantic while keeping ``file:line`` in every message."""

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from khook_core.errors import Problem
from khook_core.yamlfile import line_of

M = TypeVar("M", bound=BaseModel)


def new_list() -> list[Any]:
    """A new empty list: the ``default_factory`` of list fields.

    Pydantic reads a factory's signature when it builds the model; for the builtin ``list``
    that means tokenizing its text signature (``inspect``), whose first use compiles the
    tokenizer's patterns at every cold start. This function's signature costs nothing.
    """
    return []


def locate(doc: Any, loc: tuple[int | str, ...]) -> int | None:
    """The line of the deepest mapping key along a pydantic error location."""
    line = line_of(doc)
    node = doc
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            line = line_of(node, part) or line
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            line = line_of(node) or line
        else:
            break
    return line


def dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def field_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """A pydantic error location without its validator steps (``function-after[...]``)."""
    return tuple(p for p in loc if not (isinstance(p, str) and "[" in p))


def validate(
    model: type[M], doc: Any, file: str, problems: list[Problem], prefix: str = ""
) -> M | None:
    """Validate ``doc``; on failure append one Problem per error and return None."""
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        for err in exc.errors():
            loc = field_loc(err["loc"])
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown field"
            where = dotted(loc)
            problems.append(
                Problem(
                    file, locate(doc, loc), f"{prefix}{where}: {msg}" if where else f"{prefix}{msg}"
                )
            )
        return None
