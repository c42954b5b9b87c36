"""CEL ``when:`` conditions: compiled and type-checked when a hook loads, bounded when run.

``compile_event_condition`` serves a hook's ``eventConfigurations[].when`` (the variable is
``event``, see ``schema.EVENT_VARIABLES``); ``compile_payload_condition`` serves a
field-mapping rule's ``when`` (``payload`` and ``meta``). Both parse, expand macros and
type-check with cel-expr-python, the CEL project's own C++ implementation: an unknown name
(``event.severty``), a type error (``event.count == 'x'``) or a syntax error is a
``ConditionSyntaxError`` at load time. The checked tree is then evaluated by
``program`` (see there why, and how it is bounded). This module holds only the entry points
and the errors, so naming them costs nothing at cold start; ``compiled`` (imported on first
use) holds the rest.

Hierarchy::

    ValueError
    └── ConditionSyntaxError  the text does not compile (load time; message says where)
    KhookError
    └── ConditionError        an evaluation had no result for this event (run time)

A ``Condition`` raises nothing but ``ConditionError``, whatever the event holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from khook_core.errors import KhookError

if TYPE_CHECKING:
    from khook_core.conditions.compiled import Condition

MAX_CONDITION_CHARS: Final = 4_096
"""A condition is a filter, not a program: longer text is refused at load."""


class ConditionSyntaxError(ValueError):
    """The condition does not compile; ``str()`` says what and where (column)."""


class ConditionError(KhookError):
    """Evaluating a condition on one event failed; the event does not match that hook."""


def compile_event_condition(text: str) -> Condition:
    """Compile a hook's ``when:`` over ``event``.

    Raises:
        ConditionSyntaxError: syntax, unknown name, type error, not a bool, or refused
            function; the message names the column and, for a typo, the likely field.
    """
    from khook_core.conditions import compiled, schema

    return compiled.compile_condition(text, schema.EVENT_VARIABLES, "event")


def compile_payload_condition(text: str) -> Condition:
    """Compile a field-mapping rule's ``when:`` over ``payload`` and ``meta``."""
    from khook_core.conditions import compiled, schema

    return compiled.compile_condition(text, schema.PAYLOAD_VARIABLES, "payload")


def event_variables() -> dict[str, Any]:
    """Each variable of a hook condition with its type and meaning (``khook schema hooks``)."""
    from khook_core.conditions import schema

    return schema.described(schema.EVENT_VARIABLES)


__all__ = [
    "MAX_CONDITION_CHARS",
    "ConditionError",
    "ConditionSyntaxError",
    "compile_event_condition",
    "compile_payload_condition",
    "event_variables",
]
