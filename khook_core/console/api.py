"""Routing one console request: the page, its static files, the JSON API and its one write.

======================  =====================================================================
``/``                   the dashboard page (``static/index.html``)
``/assets/<file>``      its script, styles and the vendored chart library
``/api/v1/firings``     firings, filtered, cursor-paged (``queries.firing_filter``)
``/api/v1/counts``      counts per time bucket, hook, source, type and decision
``/api/v1/hooks``       loaded hooks, their configuration version and status
``/api/v1/backlogs``    open backlogs and circuit breakers
``/api/v1/health``      per-source health
``/api/v1/silences``    silences and the maintenance windows' next occurrences
``/api/v1/incidents``   incidents (open or closed), their members and runs
``/api/v1/openapi.json`` the OpenAPI document
======================  =====================================================================

and ``POST /api/v1/approvals/{id}/decision``, deciding an approval (``console.deciding``).

Every request is GET (or HEAD) but the one write, deciding an approval, which is POST only and
passes the same client and token checks first; every answer of the API is JSON, errors included
(``{"error", "status", "field"}``). A store failure is 503 with ``Retry-After``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import flask

from khook_core.console import access, deciding, openapi, queries, views
from khook_core.decisions import DecisionKind
from khook_core.errors import InvalidEventError, TransientError
from khook_core.runtime import Runtime
from khook_core.settings import ConsoleSettings
from khook_core.state.base import CircuitState, Firing, FiringFilter, Incident

logger = logging.getLogger(__name__)

STATIC_DIR: Final = Path(__file__).parent / "static"
STATIC_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
}
STATIC_FILES: Final = frozenset(
    str(p.relative_to(STATIC_DIR)) for p in STATIC_DIR.rglob("*") if p.suffix in STATIC_TYPES
)
"""Every file the page may load, listed once: a request path is looked up, never joined."""
PAGE_HEADERS: Final = {
    # Everything comes from this origin; nothing inline, nothing framed.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
RETRY_AFTER_SECONDS: Final = 5
BACKLOG_LIMIT: Final = 200
CIRCUIT_LIMIT: Final = 200
SILENCE_LIMIT: Final = 500
APPROVAL_LIMIT: Final = 500
INCIDENT_LIMIT: Final = 200
RUNS_PER_INCIDENT: Final = 10
"""An incident has one run; a few more when its opening run failed and was retried."""

Handler = Callable[[dict[str, str], Runtime, ConsoleSettings], dict[str, Any]]


def serve(
    request: flask.Request, runtime_of: Callable[[], Runtime], settings: ConsoleSettings
) -> flask.Response:
    """Answer one request; ``runtime_of`` opens the store on the first API call only."""
    allow = "GET, HEAD"
    try:
        path = request.path.rstrip("/") or "/"
        approval = deciding.approval_id(path)
        if approval is not None:
            allow = "POST"
            if request.method != "POST":
                raise InvalidEventError(
                    f"method {request.method} not allowed; a decision is POSTed",
                    field="method",
                    status=405,
                )
            access.check_client(request, settings)
            access.check_token(request, settings)
            body, status = deciding.handle(request, approval, runtime_of())
            return _json(body, status)
        if request.method not in ("GET", "HEAD"):
            raise InvalidEventError(
                f"method {request.method} not allowed; the console is read-only (GET) but for "
                "deciding an approval",
                field="method",
                status=405,
            )
        access.check_client(request, settings)
        if path == "/" or path.startswith("/assets/"):
            return _static("index.html" if path == "/" else path.removeprefix("/assets/"))
        handler = ROUTES.get(path)
        if handler is None:
            raise InvalidEventError(f"no such console path {path!r}", field="path", status=404)
        access.check_token(request, settings)
        args = {k: v for k, v in request.args.items()}
        return _json(handler(args, runtime_of(), settings), 200)
    except InvalidEventError as exc:
        headers = {"Allow": allow} if exc.status == 405 else {}
        if exc.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="khook console"'
        return _json(exc.to_json(), exc.status, headers)
    except TransientError as exc:
        logger.warning("console %s: state store unavailable: %s", request.path, exc)
        return _json(
            {"error": f"state store unavailable: {exc}", "status": 503},
            503,
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


def _json(
    body: dict[str, Any], status: int, headers: dict[str, str] | None = None
) -> flask.Response:
    return flask.Response(
        json.dumps(body),
        status=status,
        mimetype="application/json",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def _static(name: str) -> flask.Response:
    if name not in STATIC_FILES:
        raise InvalidEventError(f"no such console file {name!r}", field="path", status=404)
    path = STATIC_DIR / name
    return flask.Response(
        path.read_bytes(),
        status=200,
        content_type=STATIC_TYPES[path.suffix],
        headers={**PAGE_HEADERS, "Cache-Control": "no-cache"},
    )


def firings(args: dict[str, str], runtime: Runtime, settings: ConsoleSettings) -> dict[str, Any]:
    where = queries.firing_filter(args, default_since=None)
    limit = queries.parse_int(args, "limit", queries.DEFAULT_PAGE, 1, queries.MAX_PAGE)
    try:
        page = runtime.store.query_firings(where=where, cursor=args.get("cursor"), limit=limit)
    except ValueError as exc:  # InvalidCursorError
        raise queries.bad("cursor", str(exc)) from exc
    return {
        "firings": [views.firing(f, settings.task_url) for f in page.firings],
        "next_cursor": page.cursor,
    }


def counts(args: dict[str, str], runtime: Runtime, settings: ConsoleSettings) -> dict[str, Any]:
    query = queries.counts_query(args, runtime.clock())
    rows = runtime.store.count_firings(where=query.where, bucket=query.bucket)
    return {
        "since": views.iso(query.since),
        "until": views.iso(query.until),
        "bucket_seconds": int(query.bucket.total_seconds()),
        **views.counts(rows),
    }


def hooks(args: dict[str, str], runtime: Runtime, settings: ConsoleSettings) -> dict[str, Any]:
    now = runtime.clock()

    def circuit_state(key: str) -> CircuitState:
        return runtime.store.circuit_state(key=key, now=now)

    return {"hooks": views.hooks(runtime.config.hooks.rules, circuit_state)}


def backlogs(args: dict[str, str], runtime: Runtime, settings: ConsoleSettings) -> dict[str, Any]:
    held = [views.backlog(key, b) for key, b in runtime.store.backlogs(limit=BACKLOG_LIMIT)]
    circuits = runtime.store.circuits(now=runtime.clock(), limit=CIRCUIT_LIMIT)
    return {
        "backlogs": held,
        "held_total": sum(b["held"] for b in held),
        "circuits": [views.circuit(c) for c in circuits],
    }


def health(args: dict[str, str], runtime: Runtime, settings: ConsoleSettings) -> dict[str, Any]:
    now = runtime.clock()
    names = sorted(set(runtime.config.sources.names()))
    return {"sources": [views.source_health(runtime.store, name, now) for name in names]}


def silences(args: dict[str, str], runtime: Runtime, settings: ConsoleSettings) -> dict[str, Any]:
    now = runtime.clock()
    everything = queries.parse_int(args, "all", 0, 0, 1) == 1
    found = runtime.silences.store.silences(
        now=now, include_expired=everything, limit=SILENCE_LIMIT
    )
    upcoming = [o for w in runtime.config.windows if (o := w.next_occurrence(now)) is not None]
    return {
        "silences": [views.silence(s, now) for s in found],
        "windows": [views.window(o, now) for o in sorted(upcoming, key=lambda o: o.start)],
    }


def approvals(args: dict[str, str], runtime: Runtime, settings: ConsoleSettings) -> dict[str, Any]:
    from khook_core.approvals.records import as_json

    everything = queries.parse_int(args, "all", 0, 0, 1) == 1
    found = runtime.approval_store().approvals(open_only=not everything, limit=APPROVAL_LIMIT)
    return {"approvals": [as_json(a) for a in found]}


def incidents(args: dict[str, str], runtime: Runtime, settings: ConsoleSettings) -> dict[str, Any]:
    open_only = queries.parse_int(args, "open", 0, 0, 1) == 1
    workload = queries.workload_param(args)
    limit = queries.parse_int(args, "limit", queries.DEFAULT_PAGE, 1, INCIDENT_LIMIT)
    found = runtime.incidents.incidents(open_only=open_only, workload=workload, limit=limit)

    def runs(incident: Incident) -> list[Firing]:
        where = FiringFilter(incident=incident.id, outcome=DecisionKind.OPENED_INCIDENT)
        return runtime.store.query_firings(where=where, limit=RUNS_PER_INCIDENT).firings

    return {"incidents": [views.incident(i, runs(i), settings.task_url) for i in found]}


def document(args: dict[str, str], runtime: Runtime, settings: ConsoleSettings) -> dict[str, Any]:
    return openapi.document()


ROUTES: Final[dict[str, Handler]] = {
    "/api/v1/firings": firings,
    "/api/v1/counts": counts,
    "/api/v1/hooks": hooks,
    "/api/v1/backlogs": backlogs,
    "/api/v1/health": health,
    "/api/v1/silences": silences,
    "/api/v1/approvals": approvals,
    "/api/v1/incidents": incidents,
    "/api/v1/openapi.json": document,
}
