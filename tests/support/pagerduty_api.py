"""A local stand-in for PagerDuty's REST API endpoint that adds an incident note, strict about
what PagerDuty's API reference requires of ``POST /incidents/{id}/notes``: the token as
``Authorization: Token token=…``, the version-2 ``Accept`` media type, a ``From`` e-mail, a JSON
body ``{"note": {"content": <string>}}`` and nothing else.

A request that misses any of it is answered 400 and kept in ``invalid`` so a test sees why.
``fail_with`` answers the next requests with those statuses first (a 5xx PagerDuty outage);
``drop`` closes the connection after reading a request, unanswered (the request may have
arrived, as after a timeout).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.support.stub_server import QuietHandler, serving

ACCEPT = "application/vnd.pagerduty+json;version=2"
_PATH = re.compile(r"^/incidents/(?P<id>[A-Z0-9]+)/notes$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


@dataclass
class PagerdutyCall:
    incident: str
    content: str
    headers: dict[str, str]


@dataclass
class PagerdutyApi:
    url: str
    token: str
    calls: list[PagerdutyCall] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    requests: int = 0
    fail_with: list[int] = field(default_factory=list)
    drop: bool = False


def body_errors(body: Any) -> list[str]:
    """What in a create-note body PagerDuty's reference refuses."""
    if not isinstance(body, dict) or set(body) != {"note"}:
        return ["body: expected exactly {note}"]
    note = body["note"]
    if not isinstance(note, dict) or set(note) != {"content"}:
        return ["note: expected exactly {content}"]
    if not isinstance(note["content"], str) or not note["content"].strip():
        return ["note.content: expected a non-empty string"]
    return []


@contextmanager
def pagerduty_api(token: str = "u+pd-test-token") -> Iterator[PagerdutyApi]:  # noqa: S107
    api = PagerdutyApi(url="", token=token)

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            api.requests += 1
            if api.drop:
                self.close_connection = True
                return  # read, never answered
            if api.fail_with:
                self.answer_json(api.fail_with.pop(0), {"error": {"message": "unavailable"}})
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            errors: list[str] = []
            match = _PATH.match(self.path)
            if match is None:
                api.invalid.append(f"no POST {self.path} in PagerDuty's API")
                self.answer_json(404, {"error": {"message": "Not Found"}})
                return
            if headers.get("authorization") != f"Token token={api.token}":
                errors.append("Authorization: not Token token=<the token>")
            if headers.get("accept") != ACCEPT:
                errors.append(f"Accept: not {ACCEPT}")
            if not _EMAIL.match(headers.get("from", "")):
                errors.append("From: not an e-mail")
            if headers.get("content-type", "").split(";")[0] != "application/json":
                errors.append("Content-Type: not application/json")
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            errors += body_errors(body)
            if errors:
                api.invalid += errors
                self.answer_json(400, {"error": {"message": "; ".join(errors)}})
                return
            content = body["note"]["content"]
            api.calls.append(PagerdutyCall(match.group("id"), content, headers))
            self.answer_json(201, {"note": {"id": "PWL7QXS", "content": content}})

    with serving(Handler) as api.url:
        yield api
