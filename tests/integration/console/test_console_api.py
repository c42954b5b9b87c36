"""The console API over functions-framework, on data real pipeline runs wrote (conftest.py)."""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from typing import Any

import pytest

from khook_core.console import api
from khook_core.pipeline import run_pipeline
from tests.support.console import OOMS, RATE_LIMIT, RESTARTS, TOKEN, Scenario, restart_event
from tests.support.functions import FunctionServer


def call(
    server: FunctionServer,
    path: str,
    params: dict[str, str] | None = None,
    *,
    token: str | None = TOKEN,
    method: str = "GET",
) -> tuple[int, dict[str, str], Any]:
    query = urllib.parse.urlencode(params or {})
    request = urllib.request.Request(
        f"{server.url}{path}{'?' + query if query else ''}", method=method
    )
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def get(server: FunctionServer, path: str, **params: str) -> Any:
    status, _, body = call(server, path, params)
    assert status == 200, body
    return body


def z(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def event_ids(server: FunctionServer, **params: str) -> list[str]:
    return [f["resource"] for f in get(server, "/api/v1/firings", **params)["firings"]]


def test_the_scenario_holds_what_the_pipeline_decided(scenario: Scenario):
    assert scenario.decisions.count("dispatched") == RATE_LIMIT
    assert scenario.decisions.count("suppressed:budget") == RESTARTS - RATE_LIMIT
    assert scenario.decisions.count("failed:transient") == OOMS


def test_firings_come_newest_first_with_every_field(console: FunctionServer, scenario: Scenario):
    firings = get(console, "/api/v1/firings")["firings"]
    assert len(firings) == RESTARTS + OOMS
    assert [f["at"] for f in firings] == sorted((f["at"] for f in firings), reverse=True)
    assert firings[0]["resource"] == f"shop/Pod/db-{RESTARTS + OOMS - 1}"
    dispatched = [f for f in firings if f["decision"] == "dispatched"]
    assert sorted(f["task_id"] for f in dispatched) == sorted(scenario.task_ids)
    failed = next(f for f in firings if f["decision"] == "failed:transient")
    assert "Connection refused" in failed["error"]
    assert failed["hook"] == "shop/oom"
    assert failed["type"] == "oom-kill"
    assert failed["source"] == "kubernetes"
    assert failed["task_url"] is None


def test_every_filter_narrows_the_firings(console: FunctionServer, scenario: Scenario):
    restarts = [f"shop/Pod/web-{i}" for i in reversed(range(RESTARTS))]
    ooms = [f"shop/Pod/db-{RESTARTS + i}" for i in reversed(range(OOMS))]
    assert event_ids(console, hook="shop/oom") == ooms
    assert event_ids(console, hook="shop/restarts") == restarts
    assert event_ids(console, type="oom-kill") == ooms
    assert event_ids(console, type="pod-restart", hook="shop/oom") == []
    assert event_ids(console, source="kubernetes") == ooms + restarts
    assert event_ids(console, source="webhook") == []
    assert event_ids(console, resource="shop/Pod/web-2") == ["shop/Pod/web-2"]
    assert event_ids(console, decision="dispatched") == restarts[-RATE_LIMIT:]
    assert event_ids(console, decision="suppressed:budget") == restarts[:-RATE_LIMIT]
    assert event_ids(console, decision="failed:transient") == ooms
    first, third = scenario.restarts_at[0], scenario.restarts_at[2]
    assert event_ids(console, since=z(third)) == ooms + restarts[: RESTARTS - 2]
    assert event_ids(console, until=z(third)) == restarts[-2:]
    assert event_ids(console, since=z(first), until=z(third)) == restarts[-2:]
    assert event_ids(console, since=z(scenario.ooms_at[0]), decision="dispatched") == []


def test_pages_follow_the_cursor_to_the_end_without_repeats(console: FunctionServer):
    seen: list[str] = []
    params = {"limit": "2"}
    pages = 0
    while True:
        body = get(console, "/api/v1/firings", **params)
        seen += [f["resource"] for f in body["firings"]]
        pages += 1
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert pages == 5
    assert seen == event_ids(console, limit="100")


def test_counts_per_bucket_match_the_records(console: FunctionServer, scenario: Scenario):
    since = scenario.restarts_at[0].replace(minute=0)
    until = since + timedelta(hours=3)
    body = get(console, "/api/v1/counts", since=z(since), until=z(until), bucket="3600")
    assert body["bucket_seconds"] == 3600
    restarts = {
        (b["decision"], b["count"])
        for b in body["buckets"]
        if b["start"] == z(since) and b["hook"] == "shop/restarts"
    }
    assert restarts == {("dispatched", RATE_LIMIT), ("suppressed:budget", RESTARTS - RATE_LIMIT)}
    assert body["totals"]["decision"]["dispatched"] == RATE_LIMIT
    assert body["totals"]["type"] == {"oom-kill": OOMS, "pod-restart": RESTARTS}
    assert body["totals"]["source"] == {"kubernetes": RESTARTS + OOMS}
    assert body["total"] == RESTARTS + OOMS
    narrowed = get(
        console, "/api/v1/counts", since=z(since), until=z(until), bucket="600", hook="shop/oom"
    )
    assert narrowed["total"] == OOMS
    assert {b["decision"] for b in narrowed["buckets"]} == {"failed:transient"}


def test_backlogs_and_circuits_show_what_storm_control_holds(console: FunctionServer):
    body = get(console, "/api/v1/backlogs")
    assert body["held_total"] == RESTARTS - RATE_LIMIT
    (backlog,) = body["backlogs"]
    assert backlog["hook"] == "shop/restarts"
    assert backlog["held"] == RESTARTS - RATE_LIMIT
    assert backlog["resources"] == [f"shop/Pod/web-{i}" for i in range(RATE_LIMIT, RESTARTS)]
    (circuit,) = body["circuits"]
    assert circuit["failures"] == OOMS
    assert circuit["state"] == "closed"


def test_health_shows_the_failing_source_and_its_last_error(console: FunctionServer):
    sources = {s["source"]: s for s in get(console, "/api/v1/health")["sources"]}
    kubernetes = sources["kubernetes"]
    assert kubernetes["state"] == "failing"
    assert kubernetes["errors_last_hour"] == OOMS
    assert "Connection refused" in kubernetes["last_error"]
    assert kubernetes["last_event"] is not None
    assert sources["webhook"] == {
        "source": "webhook",
        "state": "idle",
        "last_event": None,
        "errors_last_hour": 0,
        "last_error": None,
        "last_error_at": None,
    }


def test_hooks_carry_their_file_version_and_status(console: FunctionServer, scenario: Scenario):
    hooks = {h["name"]: h for h in get(console, "/api/v1/hooks")["hooks"]}
    assert sorted(hooks) == ["shop/oom", "shop/restarts"]
    version = hashlib.sha256((scenario.config / "hooks" / "hooks.yaml").read_bytes()).hexdigest()
    assert {h["config_version"] for h in hooks.values()} == {version[:12]}
    assert hooks["shop/oom"]["event_types"] == ["oom-kill"]
    assert hooks["shop/restarts"]["status"] == "active"


@pytest.mark.parametrize(("token", "status"), [(None, 401), ("wrong-token", 403), ("", 401)])
def test_the_api_refuses_missing_or_wrong_tokens_in_json(
    console: FunctionServer, token: str | None, status: int
):
    got, headers, body = call(console, "/api/v1/firings", token=token)
    assert got == status
    assert body["status"] == status
    assert body["field"] == "authorization"
    assert headers["Content-Type"] == "application/json"
    if status == 401:
        assert headers["WWW-Authenticate"].startswith("Bearer")


def test_the_page_needs_no_token_and_writes_are_refused(console: FunctionServer):
    with urllib.request.urlopen(console.url + "/", timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/html")
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    status, _, body = call(console, "/api/v1/firings", method="POST")
    assert (status, body["field"]) == (405, "method")
    with urllib.request.urlopen(console.url + "/assets/vendor/chart.umd.min.js", timeout=30) as js:
        assert js.headers["Content-Type"].startswith("text/javascript")
    status, _, body = call(console, "/assets/../main.py")
    assert status == 404


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/firings", {"since": "yesterday"}, "since"),
        ("/api/v1/firings", {"since": "2026-01-05T10:00:00"}, "since"),
        ("/api/v1/firings", {"limit": "0"}, "limit"),
        ("/api/v1/firings", {"cursor": "bogus"}, "cursor"),
        (
            "/api/v1/firings",
            {"since": "2026-01-05T10:00:00Z", "until": "2026-01-05T09:00:00Z"},
            "until",
        ),
        ("/api/v1/counts", {"bucket": "1"}, "bucket"),
        ("/api/v1/nothing", {}, "path"),
    ],
)
def test_bad_requests_are_400_or_404_naming_the_parameter(
    console: FunctionServer, path: str, params: dict[str, str], field: str
):
    status, _, body = call(console, path, params)
    assert status in (400, 404)
    assert body["field"] == field


def test_the_openapi_document_names_every_route_and_each_answer_has_its_fields(
    console: FunctionServer,
):
    document = get(console, "/api/v1/openapi.json")
    assert document["openapi"].startswith("3.1")
    assert sorted(document["paths"]) == sorted([*api.ROUTES, "/api/v1/approvals/{id}/decision"])
    for path, item in document["paths"].items():
        if path.endswith(("openapi.json", "/decision")):
            continue
        schema = item["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        conforms(get(console, path), schema, path)


def test_pages_stay_stable_while_the_pipeline_writes(console: FunctionServer, scenario: Scenario):
    """Last in this module: the records it writes would change what the others count."""
    before = event_ids(console, limit="100")
    start = max(scenario.ooms_at) + timedelta(minutes=1)
    stop = threading.Event()
    started = threading.Event()
    written: list[str] = []

    def write() -> None:
        clock = [start]
        runtime = scenario.runtime(lambda: clock[0])
        try:
            for i in range(100, 160):
                if stop.is_set():
                    return
                clock[0] = start + timedelta(seconds=i)
                run_pipeline("kubernetes", restart_event(i, clock[0]), {}, runtime=runtime)
                written.append(f"shop/Pod/web-{i}")
                started.set()
        finally:
            started.set()
            runtime.close()

    writer = threading.Thread(target=write)
    writer.start()
    # Read only once the writer is under way, so the walks below really run beside it.
    assert started.wait(60), "the writer did not start"
    seen: list[str] = []
    try:
        params = {"limit": "2", "until": z(start)}
        cursor = None
        while True:
            body = get(
                console, "/api/v1/firings", **params, **({"cursor": cursor} if cursor else {})
            )
            seen += [f["resource"] for f in body["firings"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        # The same walk without an upper bound: new records go to the front, never in between.
        unbounded: list[str] = []
        cursor = None
        first = True
        while first or cursor:
            body = get(
                console, "/api/v1/firings", limit="3", **({"cursor": cursor} if cursor else {})
            )
            unbounded += [f["resource"] for f in body["firings"]]
            cursor, first = body["next_cursor"], False
    finally:
        stop.set()
        writer.join(120)
    assert written, "the writer recorded nothing beside the reader"
    assert seen == before
    assert len(unbounded) == len(set(unbounded))
    assert [r for r in unbounded if r in before] == before


def conforms(value: Any, schema: dict[str, Any], where: str) -> None:
    """The parts of JSON Schema the document uses: type, required, properties, items, enum."""
    kinds = schema.get("type")
    if "enum" in schema:
        assert value in schema["enum"], where
    if kinds is not None:
        kinds = kinds if isinstance(kinds, list) else [kinds]
        python = {
            "string": str,
            "integer": int,
            "boolean": bool,
            "object": dict,
            "array": list,
            "null": type(None),
        }
        assert any(isinstance(value, python[k]) for k in kinds), f"{where}: {value!r} not {kinds}"
    if isinstance(value, dict):
        assert set(schema.get("required", [])) <= set(value), f"{where}: {sorted(value)}"
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                conforms(value[name], sub, f"{where}.{name}")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name, item in value.items():
                conforms(item, extra, f"{where}.{name}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            conforms(item, schema["items"], f"{where}[{i}]")
