"""What a silence or a window mutes: a CEL condition over ``event``, a hook, a source.

The condition is compiled with ``conditions.compile_event_condition``, the compiler of a
hook's ``when:``, so a typo (``event.resource.namespce``) is refused with the same message
and column before anything is stored.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from khook_core import conditions

if TYPE_CHECKING:
    from khook_core.conditions.compiled import Condition
    from khook_core.event import Event

logger = logging.getLogger(__name__)


class Matcher:
    """A compiled scope: ``matches(hook, event)`` holds when every part given holds."""

    __slots__ = ("condition", "hook", "source", "text")

    def __init__(self, text: str, *, hook: str = "", source: str = "") -> None:
        self.text = text
        self.hook = hook
        self.source = source
        self.condition: Condition | None = compile_matcher(text) if text else None

    def matches(self, hook: str, event: Event) -> bool:
        """Whether ``event`` for ``hook`` is muted. A condition with no result for the event
        (a missing field) mutes nothing: an event is only held back when the silence says so."""
        if self.hook and hook != self.hook:
            return False
        if self.source and event.source != self.source:
            return False
        if self.condition is None:
            return True
        try:
            return self.condition(event)
        except conditions.ConditionError as exc:
            logger.warning(
                "silence matcher %r: %s (event %s not silenced)", self.text, exc, event.id
            )
            return False


def compile_matcher(text: str) -> Condition:
    """Compile ``text`` as a hook's ``when:`` is compiled.

    Raises:
        ConditionSyntaxError: syntax, unknown field (with the likely one), type error.
    """
    return conditions.compile_event_condition(text)
