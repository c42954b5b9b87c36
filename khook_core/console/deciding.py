"""``POST /api/v1/approvals/{id}/decision``: the console's only write, deciding an approval.

It takes the decision ``khook approve`` takes and goes through the same path
(``khook_core.approvals.deciding.decide``: validated against the request before anything is
sent, stored once whoever else decides at the same moment, sent once). Authentication is the
API's own (``access``); on top of it a cross-site form cannot forge the call: the body must be
JSON and the ``X-Khook-Console`` header must be set, which a browser only sends cross-origin after
a CORS preflight the console never grants.

Who decided: the bearer token names no person, so the decision is recorded as ``console``, or
``<name> (console)`` when the caller names itself in ``X-Khook-User``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

import flask

from khook_core.approvals.deciding import Decision, decide
from khook_core.approvals.hitl import DecisionError
from khook_core.approvals.records import as_json
from khook_core.errors import InvalidEventError
from khook_core.runtime import Runtime

PATH: Final = re.compile(r"^/api/v1/approvals/(?P<id>[A-Za-z0-9_.:-]{1,200})/decision$")
CSRF_HEADER: Final = "X-Khook-Console"
USER_HEADER: Final = "X-Khook-User"
BY: Final = "console"
MAX_BODY: Final = 64 * 1024
MAX_TEXT: Final = 2000
USER_PATTERN: Final = re.compile(r"^[\w.@+ -]{1,100}$")
FIELDS: Final = frozenset({"approve", "calls", "answers", "reason"})


def approval_id(path: str) -> str | None:
    """The approval id of a decision path, else None."""
    match = PATH.match(path)
    return match.group("id") if match else None


def check_csrf(request: flask.Request) -> None:
    """Refuse what a cross-site form or a simple request could send.

    Raises:
        InvalidEventError: 415 for a body that is not JSON, 403 without the custom header.
    """
    if request.mimetype != "application/json":
        raise InvalidEventError(
            "a decision is a JSON body (Content-Type: application/json)",
            field="content-type",
            status=415,
        )
    if not request.headers.get(CSRF_HEADER, "").strip():
        raise InvalidEventError(
            f"a decision needs the {CSRF_HEADER} header (set by the console page)",
            field=CSRF_HEADER.lower(),
            status=403,
        )


def decided_by(request: flask.Request) -> str:
    """``console``, or ``<X-Khook-User> (console)``.

    Raises:
        InvalidEventError: 400, a user header that is not a plain name.
    """
    user = request.headers.get(USER_HEADER, "").strip()
    if not user:
        return BY
    if not USER_PATTERN.match(user):
        raise _bad(USER_HEADER.lower(), "a plain name of at most 100 characters")
    return f"{user} ({BY})"


def parse(request: flask.Request, by: str) -> Decision:
    """The decision in the body: exactly one of ``approve``, ``calls``, ``answers``.

    Raises:
        InvalidEventError: 400 naming the field that is missing or malformed.
    """
    if (request.content_length or 0) > MAX_BODY:
        raise InvalidEventError("the decision is too large", field="body", status=413)
    try:
        body = json.loads(request.get_data(cache=False) or b"null")
    except ValueError as exc:
        raise _bad("body", f"a JSON object ({exc})") from exc
    if not isinstance(body, dict):
        raise _bad("body", "a JSON object")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise _bad(unknown[0], f"one of {', '.join(sorted(FIELDS))} (unknown field)")
    given = [k for k in ("approve", "calls", "answers") if k in body]
    if len(given) != 1:
        raise _bad("decision", "exactly one of approve, calls or answers")
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > MAX_TEXT:
        raise _bad("reason", f"a string of at most {MAX_TEXT} characters")
    [kind] = given
    value = body[kind]
    if kind == "approve":
        if not isinstance(value, bool):
            raise _bad("approve", "true or false")
        return Decision(by=by, approve=value, reason=reason)
    if kind == "calls":
        if not isinstance(value, dict) or not value:
            raise _bad("calls", 'an object of call id → "approve" or "reject"')
        for call, verdict in value.items():
            if verdict not in ("approve", "reject"):
                raise _bad(f"calls.{call}", '"approve" or "reject"')
        return Decision(by=by, calls={c: v == "approve" for c, v in value.items()}, reason=reason)
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(a, str) and a.strip() and len(a) <= MAX_TEXT for a in value)
    ):
        raise _bad("answers", "a list of non-empty strings, one per question")
    return Decision(by=by, answers=tuple(value), reason=reason)


def handle(request: flask.Request, id: str, runtime: Runtime) -> tuple[dict[str, Any], int]:
    """Decide approval ``id``: 200 sent, 502 stored but not sent, 404, 409 already decided,
    400 a decision that does not answer the request (nothing stored or sent).

    Raises:
        InvalidEventError: the refusals above, as JSON errors.
    """
    check_csrf(request)
    decision = parse(request, decided_by(request))
    store = runtime.approval_store()
    approval = store.get_approval(id=id)
    if approval is None:
        raise InvalidEventError(f"no approval {id!r}", field="id", status=404)
    try:
        done = decide(runtime, id, decision, runtime.clock())
    except DecisionError as exc:
        latest = store.get_approval(id=id)
        if latest is None or not latest.is_open:  # decided before us, or while we validated
            raise InvalidEventError(str(exc), field="id", status=409) from exc
        field = (
            "answers" if approval.kind == "ask_user" else "calls" if decision.calls else "decision"
        )
        raise InvalidEventError(str(exc), field=field, status=400) from exc
    body = {"approval": as_json(done)}
    if done.sent != "sent":
        return {"error": f"decision stored but not sent: {done.sent}", "status": 502, **body}, 502
    return body, 200


def _bad(field: str, expected: str) -> InvalidEventError:
    return InvalidEventError(f"{field}: expected {expected}", field=field, status=400)
