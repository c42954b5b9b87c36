"""Field selectors made to fit the watched Events API, at start-up.

The two Event APIs name the same fields differently: core/v1 Events have ``involvedObject.*``,
``reportingComponent`` and ``source``; events.k8s.io/v1 Events have ``regarding.*`` and
``reportingController``, and no field for ``source``. A selector written for one API is refused
by the other with HTTP 400, which no retry cures, so a field with a known equivalent is
translated here, a field known to have none is refused here with the reason, and anything
else is left to the API server, whose refusal the forwarder reports (log and /readyz).
"""

from __future__ import annotations

import re

from khook_core.forwarder.config import CORE_API, EVENTS_API

_OBJECT_FIELDS = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
_CORE_TO_EVENTS = {
    **{f"involvedObject.{f}": f"regarding.{f}" for f in _OBJECT_FIELDS},
    "reportingComponent": "reportingController",
}
_TRANSLATIONS = {
    EVENTS_API: _CORE_TO_EVENTS,
    CORE_API: {events: core for core, events in _CORE_TO_EVENTS.items()},
}
_NO_EQUIVALENT = {
    EVENTS_API: {
        "source": "events.k8s.io/v1 Events cannot be selected by source; use "
        "reportingController, or watch --api v1"
    },
    CORE_API: {},
}
_TERM = re.compile(r"^(?P<field>[^!=]+)(?P<op>!=|==|=)(?P<value>.*)$", re.DOTALL)
_SPLIT = re.compile(r"(?<!\\),")  # a value may hold an escaped comma


def fit_field_selector(selector: str, api: str) -> str:
    """``selector`` with every field renamed to the one ``api`` knows.

    Raises:
        ValueError: a term is not ``field=value``, ``field==value`` or ``field!=value``, or
            names a field that has no equivalent on ``api``.
    """
    terms: list[str] = []
    for term in _SPLIT.split(selector):
        stripped = term.strip()
        if not stripped:
            continue
        match = _TERM.match(stripped)
        if match is None:
            raise ValueError(f"field selector term {stripped!r} is not field=value or field!=value")
        field = match["field"].strip()
        if field in _NO_EQUIVALENT[api]:
            raise ValueError(f"field selector {field!r}: {_NO_EQUIVALENT[api][field]}")
        terms.append(f"{_TRANSLATIONS[api].get(field, field)}{match['op']}{match['value']}")
    return ",".join(terms)
