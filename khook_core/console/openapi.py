"""The API's OpenAPI 3.1 document, served at ``/api/v1/openapi.json`` and checked by tests
against the routes and the answers the API really gives."""

from __future__ import annotations

from typing import Any, Final

from khook_core.console import queries

_TEXT: Final = {"type": "string"}
_NULLABLE_TEXT: Final = {"type": ["string", "null"]}
_TIME: Final = {"type": "string", "format": "date-time"}
_NULLABLE_TIME: Final = {"type": ["string", "null"], "format": "date-time"}


def _param(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or _TEXT,
    }


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": sorted(properties), "properties": properties}


_FILTER_PARAMS: Final = [
    _param("since", "Only firings at or after this RFC 3339 time.", _TIME),
    _param("until", "Only firings before this RFC 3339 time.", _TIME),
    _param("hook", "Hook, namespace/name, exact."),
    _param("source", "Source (kubernetes, alertmanager, webhook, kafka, cdc, gcp, a plugin)."),
    _param("type", "Event type, kebab-case (pod-restart)."),
    _param("resource", "Resource, namespace/Kind/name as recorded."),
    _param(
        "decision",
        "Decision as recorded (dispatched, coalesced, suppressed:budget, failed:<why>), exact.",
    ),
    _param("incident", "Incident id (the A2A contextId of its run), exact."),
]

FIRING: Final = _object(
    {
        "at": _TIME,
        "hook": _TEXT,
        "decision": _TEXT,
        "source": _TEXT,
        "type": _TEXT,
        "resource": _TEXT,
        "event_id": _TEXT,
        "agent": _TEXT,
        "task_id": _NULLABLE_TEXT,
        "task_url": _NULLABLE_TEXT,
        "error": _NULLABLE_TEXT,
        "key": _TEXT,
        "extra": {"type": "object", "additionalProperties": _TEXT},
        "incident": _NULLABLE_TEXT,
    }
)
_COUNT_MAP: Final = {"type": "object", "additionalProperties": {"type": "integer"}}
ERROR: Final = {
    "type": "object",
    "required": ["error", "status"],
    "properties": {"error": _TEXT, "status": {"type": "integer"}, "field": _TEXT},
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _ok(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "200": {"description": description, "content": {"application/json": {"schema": schema}}},
        "400": {"$ref": "#/components/responses/BadRequest"},
        "401": {"$ref": "#/components/responses/Unauthorized"},
        "403": {"$ref": "#/components/responses/Forbidden"},
        "503": {"$ref": "#/components/responses/Unavailable"},
    }


def _get(summary: str, params: list[dict[str, Any]], schema: dict[str, Any]) -> dict[str, Any]:
    return {"get": {"summary": summary, "parameters": params, "responses": _ok(schema, summary)}}


PATHS: Final[dict[str, Any]] = {
    "/api/v1/firings": _get(
        "Firings, newest first, filtered, one page at a time.",
        [
            *_FILTER_PARAMS,
            _param(
                "limit",
                f"Page size, 1..{queries.MAX_PAGE} (default {queries.DEFAULT_PAGE}).",
                {"type": "integer", "minimum": 1, "maximum": queries.MAX_PAGE},
            ),
            _param(
                "cursor",
                "next_cursor of the previous page; records written since never shift the pages.",
            ),
        ],
        _object({"firings": {"type": "array", "items": FIRING}, "next_cursor": _NULLABLE_TEXT}),
    ),
    "/api/v1/counts": _get(
        "Firings counted per time bucket, hook, source, type and decision.",
        [
            *_FILTER_PARAMS,
            _param(
                "bucket",
                "Bucket size in seconds (default: the range in about 48 bars); "
                f"at most {queries.MAX_BUCKETS} buckets.",
                {"type": "integer", "minimum": 1},
            ),
        ],
        _object(
            {
                "since": _TIME,
                "until": _TIME,
                "bucket_seconds": {"type": "integer"},
                "buckets": {
                    "type": "array",
                    "items": _object(
                        {
                            "start": _TIME,
                            "hook": _TEXT,
                            "source": _TEXT,
                            "type": _TEXT,
                            "decision": _TEXT,
                            "count": {"type": "integer"},
                        }
                    ),
                },
                "totals": _object(
                    {
                        "source": _COUNT_MAP,
                        "type": _COUNT_MAP,
                        "decision": _COUNT_MAP,
                        "hook": _COUNT_MAP,
                    }
                ),
                "total": {"type": "integer"},
            }
        ),
    ),
    "/api/v1/hooks": _get(
        "Loaded hooks with their configuration version and status.",
        [],
        _object(
            {
                "hooks": {
                    "type": "array",
                    "items": _object(
                        {
                            "name": _TEXT,
                            "event_types": {"type": "array", "items": _TEXT},
                            "agents": {"type": "array", "items": _TEXT},
                            "file": _TEXT,
                            "config_version": _NULLABLE_TEXT,
                            "status": {"enum": ["active", "open", "half-open"]},
                        }
                    ),
                }
            }
        ),
    ),
    "/api/v1/backlogs": _get(
        "Open backlogs (what storm control holds back) and circuit breakers.",
        [],
        _object(
            {
                "backlogs": {
                    "type": "array",
                    "items": _object(
                        {
                            "key": _TEXT,
                            "kind": {"enum": ["group", "budget", "silence"]},
                            "hook": _TEXT,
                            "held": {"type": "integer"},
                            "first": _TIME,
                            "last": _TIME,
                            "resources": {"type": "array", "items": _TEXT},
                            "reasons": {"type": "array", "items": _TEXT},
                            "truncated": {"type": "boolean"},
                        }
                    ),
                },
                "held_total": {"type": "integer"},
                "circuits": {
                    "type": "array",
                    "items": _object(
                        {
                            "key": _TEXT,
                            "state": {"enum": ["closed", "open", "half-open"]},
                            "failures": {"type": "integer"},
                            "open_until": _NULLABLE_TIME,
                        }
                    ),
                },
            }
        ),
    ),
    "/api/v1/silences": _get(
        "Silences in force or to come (with ?all=1, ended ones too) and each maintenance "
        "window's open or next occurrence.",
        [_param("all", "1: also the silences that have ended.")],
        _object(
            {
                "silences": {
                    "type": "array",
                    "items": _object(
                        {
                            "id": _TEXT,
                            "matcher": _TEXT,
                            "hook": _NULLABLE_TEXT,
                            "source": _NULLABLE_TEXT,
                            "author": _TEXT,
                            "comment": _TEXT,
                            "starts_at": _TIME,
                            "ends_at": _TIME,
                            "created_at": _TIME,
                            "drop": {"type": "boolean"},
                            "expired_by": _NULLABLE_TEXT,
                            "state": {"enum": ["active", "pending", "ended"]},
                        }
                    ),
                },
                "windows": {
                    "type": "array",
                    "items": _object(
                        {
                            "name": _TEXT,
                            "start": _TIME,
                            "end": _TIME,
                            "open": {"type": "boolean"},
                        }
                    ),
                },
            }
        ),
    ),
    "/api/v1/incidents": _get(
        "Incidents, the most recently opened first: one per workload and quiet period, with "
        "their members, the runs they opened and their follow-ups.",
        [
            _param("open", "1: only the open incidents.", {"enum": ["0", "1"]}),
            _param("workload", "Only this workload, namespace/Kind/name (shop/Deployment/x)."),
            _param(
                "limit",
                f"At most this many, 1..200 (default {queries.DEFAULT_PAGE}).",
                {"type": "integer", "minimum": 1, "maximum": 200},
            ),
        ],
        _object(
            {
                "incidents": {
                    "type": "array",
                    "items": _object(
                        {
                            "id": _TEXT,
                            "workload": _TEXT,
                            "state": {"enum": ["open", "closed"]},
                            "close_reason": {"enum": [None, "resolved", "quiet"]},
                            "hook": _TEXT,
                            "agent": _TEXT,
                            "opened_at": _TIME,
                            "last_event_at": _TIME,
                            "closed_at": _NULLABLE_TIME,
                            "events": {"type": "integer"},
                            "members": {
                                "type": "array",
                                "items": _object(
                                    {
                                        "member": _TEXT,
                                        "state": {"enum": ["firing", "resolved", "event"]},
                                    }
                                ),
                            },
                            "runs": {"type": "array", "items": FIRING},
                            "follow_ups": {"type": "integer"},
                            "last_follow_up_at": _NULLABLE_TIME,
                            "pending": {"type": "integer"},
                        }
                    ),
                }
            }
        ),
    ),
    "/api/v1/approvals": _get(
        "Approvals agent tasks wait for, the latest first (with ?all=1, decided ones too): "
        "the agent's request, and once decided who decided, when, and whether it was sent.",
        [_param("all", "1: also the approvals that were decided or expired.")],
        _object(
            {
                "approvals": {
                    "type": "array",
                    "items": _object(
                        {
                            "id": _TEXT,
                            "state": {
                                "enum": [
                                    "open",
                                    "approved",
                                    "rejected",
                                    "mixed",
                                    "answered",
                                    "expired",
                                ]
                            },
                            "kind": {"enum": ["tool_approval", "ask_user", "plain"]},
                            "hook": _TEXT,
                            "agent": _TEXT,
                            "task_id": _TEXT,
                            "context_id": _TEXT,
                            "endpoint": _TEXT,
                            "text": _TEXT,
                            "request": {"type": ["object", "null"]},
                            "opened_at": _TIME,
                            "deadline": _TIME,
                            "decision": {"type": ["object", "null"]},
                            "decided_by": _TEXT,
                            "decided_at": _NULLABLE_TIME,
                            "reason": _TEXT,
                            "sent": _TEXT,
                        }
                    ),
                },
            }
        ),
    ),
    "/api/v1/health": _get(
        "Per source: last event some hook acted on, errors in the last hour, last error.",
        [],
        _object(
            {
                "sources": {
                    "type": "array",
                    "items": _object(
                        {
                            "source": _TEXT,
                            "state": {"enum": ["ok", "failing", "idle"]},
                            "last_event": _NULLABLE_TIME,
                            "errors_last_hour": {"type": "integer"},
                            "last_error": _NULLABLE_TEXT,
                            "last_error_at": _NULLABLE_TIME,
                        }
                    ),
                }
            }
        ),
    ),
    "/api/v1/approvals/{id}/decision": {
        "post": {
            "summary": "Decide an open approval, as `khook approve` does: approve or reject "
            "every pending tool call (approve), or call by call (calls), or answer the agent's "
            "questions (answers). Validated against the agent's request before anything is "
            "sent; stored once; sent once. The console's only write: besides the API's "
            "authentication it needs a JSON body and the X-Khook-Console header (no form post "
            "can forge it). Recorded as decided by `console`, or `<X-Khook-User> (console)`.",
            "parameters": [
                {"name": "id", "in": "path", "required": True, "schema": _TEXT},
                {
                    "name": "X-Khook-Console",
                    "in": "header",
                    "required": True,
                    "description": "Any non-empty value: proves a script, not a form, sent it.",
                    "schema": _TEXT,
                },
                {
                    "name": "X-Khook-User",
                    "in": "header",
                    "required": False,
                    "description": "Who decides, recorded as `<name> (console)`.",
                    "schema": _TEXT,
                },
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "approve": {"type": "boolean"},
                                "calls": {
                                    "type": "object",
                                    "additionalProperties": {"enum": ["approve", "reject"]},
                                },
                                "answers": {"type": "array", "items": _TEXT},
                                "reason": _TEXT,
                            },
                            "oneOf": [
                                {"required": ["approve"]},
                                {"required": ["calls"]},
                                {"required": ["answers"]},
                            ],
                        }
                    }
                },
            },
            "responses": {
                "200": {
                    "description": "Decided and sent to the paused task.",
                    "content": {
                        "application/json": {"schema": _object({"approval": {"type": "object"}})}
                    },
                },
                "400": {"$ref": "#/components/responses/BadRequest"},
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "403": {"$ref": "#/components/responses/Forbidden"},
                "404": _error("No such approval."),
                "409": _error("Already decided (by whom, when); nothing sent."),
                "415": _error("The body is not JSON."),
                "502": _error("Decided and stored, but the agent could not be reached."),
                "503": {"$ref": "#/components/responses/Unavailable"},
            },
        }
    },
    "/api/v1/openapi.json": {
        "get": {
            "summary": "This document.",
            "responses": {
                "200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}
            },
        }
    },
}


def document() -> dict[str, Any]:
    """The whole document (a new dict each call: callers may not share a mutable one)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "khook console API",
            "version": "1",
            "description": "Read-only but for deciding an approval: what khook fired, what "
            "storm control held back, which agent got what, which source is failing, which "
            "incidents are open, which approvals wait.",
        },
        "paths": PATHS,
        "security": [{}, {"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR},
            "responses": {
                "BadRequest": _error("A query parameter is invalid (field names it)."),
                "Unauthorized": _error("No bearer token, and this console needs one."),
                "Forbidden": _error("Wrong token, or a client from another host."),
                "Unavailable": _error("The state store is unavailable; retry later."),
            },
        },
    }
