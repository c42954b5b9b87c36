"""Compiling a condition: the CEL library's checker, then ``program``'s closures.

Imported on the first condition compiled, so configurations without conditions (and the
modules that only name the errors) pay nothing for it at cold start.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from enum import Enum
from functools import lru_cache
from typing import Any, Final

from khook_core.conditions import (
    MAX_CONDITION_CHARS,
    ConditionError,
    ConditionSyntaxError,
    program,
    schema,
    values,
    wire,
)

MAX_VALUE_CHARS: Final = 200
"""``seen`` shortens each string it reports (replay output, log lines) to this many characters."""


class Condition:
    """A compiled condition over one root (an Event, or payload and meta).

    Calling it answers whether the condition holds; an evaluation error or the cost limit
    raises ``ConditionError`` and nothing else.
    """

    __slots__ = ("_fn", "_framed", "_getters", "needs_mapping", "text", "variables")

    def __init__(
        self,
        text: str,
        fn: tuple[program.Fn, bool],
        variables: tuple[str, ...],
        getters: Mapping[str, Callable[[Any], Any]],
        needs_mapping: bool,
    ) -> None:
        self.text = text
        self._fn, self._framed = fn
        self.variables = variables
        """The declared variables the expression reads, in name order."""
        self._getters = getters
        self.needs_mapping = needs_mapping
        """Whether it reads what the mapping row changes (severity, tags, internal type)."""

    def __call__(self, root: Any) -> bool:
        try:
            result = self._fn(program.Frame(root) if self._framed else root)
        except values.EvalError as exc:
            raise ConditionError(str(exc)) from None
        except Exception as exc:  # a condition must never break the pipeline
            raise ConditionError(f"{type(exc).__name__}: {exc}"[:MAX_VALUE_CHARS]) from None
        if result is True or result is False:
            return result
        raise ConditionError(f"the condition gave {values.type_name(result)}, not a bool")

    def seen(self, root: Any) -> dict[str, Any]:
        """The value of each variable the condition reads, as JSON (for ``khook replay``)."""
        out: dict[str, Any] = {}
        for name in self.variables:
            try:
                out[name] = _json(self._getters[name](root))
            except Exception as exc:  # a report, never a failure
                out[name] = f"<error: {type(exc).__name__}>"
        return out

    def __repr__(self) -> str:
        return f"Condition({self.text!r})"


def compile_condition(text: str, variables: tuple[schema.Variable, ...], kind: str) -> Condition:
    if not isinstance(text, str) or not text.strip():
        raise ConditionSyntaxError("the condition is empty")
    if len(text) > MAX_CONDITION_CHARS:
        raise ConditionSyntaxError(
            f"the condition has {len(text)} characters (at most {MAX_CONDITION_CHARS})"
        )
    env = _environment(kind)
    try:
        expression = env.compile(text)
    except RuntimeError as exc:
        raise ConditionSyntaxError(_explain(str(exc), variables)) from None
    result_type = expression.return_type().name().lower()
    if result_type not in ("bool", "dyn"):
        raise ConditionSyntaxError(f"the condition gives {result_type}, not a bool")
    checked = wire.checked(expression.serialize())
    getters = {v.name: v.read for v in variables}
    try:
        fn = program.build(checked, getters)
    except program.Unsupported as exc:
        raise ConditionSyntaxError(str(exc)) from None
    used = tuple(sorted({n for n in checked.names.values() if n in getters}))
    mapped = {v.name for v in variables if v.mapped}
    return Condition(text, fn, used, getters, bool(mapped.intersection(used)))


@lru_cache(maxsize=2)
def _environment(kind: str) -> Any:
    """The CEL environment of one kind, built once (imported here: only hooks with ``when:``
    pay for the library)."""
    from cel_expr_python import cel

    variables = schema.EVENT_VARIABLES if kind == "event" else schema.PAYLOAD_VARIABLES
    return cel.NewEnv(variables={v.name: _cel_type(cel, v.cel_type) for v in variables})


def _cel_type(cel: Any, name: str) -> Any:
    simple = {
        "string": cel.Type.STRING,
        "int": cel.Type.INT,
        "dyn": cel.Type.DYN,
        "timestamp": cel.Type.TIMESTAMP,
    }
    if name in simple:
        return simple[name]
    match = re.fullmatch(r"map\((\w+), (\w+)\)", name)
    assert match, name
    return cel.Type.Map(simple[match[1]], simple[match[2]])


_CEL_ERROR = re.compile(r"ERROR: <input>:(\d+):(\d+): ([^\n]*)")
_UNDECLARED = re.compile(r"undeclared reference to '([^']+)' \(in container ''\)")


def _explain(raw: str, variables: tuple[schema.Variable, ...]) -> str:
    """The library's error text as one short sentence a hook author can act on."""
    found = _CEL_ERROR.findall(raw)
    if not found:
        return raw.strip().splitlines()[0] if raw.strip() else "does not compile"
    problems = []
    names = [v.name for v in variables]
    for line, column, message in found[:3]:
        where = f"column {column}" if line == "1" else f"line {line} column {column}"
        undeclared = _UNDECLARED.fullmatch(message.strip())
        if undeclared:
            name = undeclared[1]
            close = difflib.get_close_matches(name, names, n=1, cutoff=0.75)
            hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(names)}"
            message = f"unknown field {name} ({hint})"
        problems.append(f"{message.strip()} at {where}")
    return "; ".join(problems)


def _json(value: Any) -> Any:
    """A variable's value as JSON for reports, long strings shortened."""
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, str):
        return value if len(value) <= MAX_VALUE_CHARS else value[:MAX_VALUE_CHARS] + "…"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return f"{value.total_seconds():g}s"
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v) for v in value]
    return value
