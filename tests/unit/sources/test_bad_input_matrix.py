"""Bad input to every function, through functions-framework: never a 5xx, never HTML, never late.

One table of hostile requests (unencodable text, nesting, numbers that overflow, envelopes the
framework cannot convert, stalled bodies, oversized declarations) is sent to every HTTP function
and every Pub/Sub function, with the SQLite store behind them. HTTP functions answer a 4xx JSON
body naming the field; Pub/Sub functions answer a 4xx JSON body for what is not a delivery at
all, and acknowledge (200, reason logged with its field) a delivery that can never succeed.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from khook_core.transport import guard
from tests.support.paths import REPO
from tests.support.sources import TOKEN, push_body, sample_bytes
from tests.unit.sources.test_http_functions import (
    ALERTMANAGER_CASES,
    SMALL_LIMIT_PLUGINS,
    WEBHOOK_CASES,
)
from tests.unit.sources.test_http_functions import Case as HttpCase
from tests.unit.sources.test_http_functions import send as send_http_case

BODY_READ_TIMEOUT_S = 0.5
"""The body deadline the functions run with here; a stalled body must be answered soon after."""
ANSWER_DEADLINE_S = 5.0
"""Every other answer is immediate; this only catches a hang, not a slow machine."""
HTTP_FUNCTIONS = ("alertmanager", "webhook")
PUBSUB_FUNCTIONS = ("kubernetes", "kafka", "cdc", "gcp", "sweep")
PAYLOAD_FUNCTIONS = ("kubernetes", "kafka", "cdc", "gcp")
"""The Pub/Sub functions that parse their message (the sweep's tick carries nothing)."""
BEARER = {"Authorization": f"Bearer {TOKEN}"}
TOPIC_PATH = "/projects/p1/topics/khook-test"

ALERTS = json.loads(sample_bytes("alertmanager", "kube-pod-crash-looping-firing.json"))
GENERIC = json.loads(sample_bytes("webhook", "generic-deployment-failed.json"))
K8S_EVENT = json.loads(sample_bytes("kubernetes", "events.jsonl").splitlines()[0])
KAFKA_ATTRIBUTES = {
    "kafka.topic": "ops.lag",
    "kafka.partition": "0",
    "kafka.offset": "1",
    "kafka.timestamp": "1767609071000",
}


@dataclasses.dataclass
class Case:
    """One hostile request and what kind of answer it must get."""

    name: str
    body: bytes
    expect: str
    """``refuse``: a 4xx JSON error; ``ack``: 200 and the reason logged (Pub/Sub only)."""
    status: int | None = None
    field: str | None = None
    path: str = "/"
    method: str = "POST"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    content_type: str | None = "application/json"
    slow: bool = False
    """The body arrives slower than the deadline."""
    declared: int | None = None
    """A Content-Length to declare instead of the body's own."""

    def __str__(self) -> str:
        return self.name


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def with_escape(document: Any, marker: str, escape: str) -> bytes:
    """``document`` as JSON with the string ``marker`` replaced by a raw ``\\u`` escape."""
    return json.dumps(document).replace(marker, escape).encode()


def _alerts_with(label: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(json.dumps(ALERTS))
    doc["alerts"][0]["labels"]["pod"] = label
    return doc


def http_cases(function: str) -> list[Case]:
    """Payload-level bad input for an HTTP function (the envelope is the HTTP request)."""
    doc: Any = (
        _alerts_with("MARK") if function == "alertmanager" else {**GENERIC, "message": "MARK"}
    )
    field = "alerts[0].labels.pod" if function == "alertmanager" else "message"
    key_doc = {**(ALERTS if function == "alertmanager" else GENERIC), "KEYMARK": "x"}
    return [
        Case("lone high surrogate", with_escape(doc, "MARK", "a\\ud800b"), "refuse", 400, field),
        Case("lone low surrogate", with_escape(doc, "MARK", "\\udfff"), "refuse", 400, field),
        Case("reversed pair", with_escape(doc, "MARK", "\\udc00\\ud800"), "refuse", 400, field),
        Case(
            "surrogate in a key",
            with_escape(key_doc, "KEYMARK", "k\\ud800"),
            "refuse",
            400,
            "k\\ud800",
        ),
        Case("nested just over the limit", nested(65).encode(), "refuse", 400, "body"),
        Case("nested past the parser's recursion", nested(1500).encode(), "refuse", 400, "body"),
        Case("1e999", json.dumps(doc).replace('"MARK"', "1e999").encode(), "refuse", 400, "body"),
        Case("-1e999", b'{"x": -1e999}', "refuse", 400, "body"),
        Case("Infinity", b'{"x": Infinity}', "refuse", 400, "body"),
        Case("NaN", b'{"x": NaN}', "refuse", 400, "body"),
        Case("an integer of 5000 digits", b'{"x": 1' + b"0" * 5000 + b"}", "refuse"),
        Case("not UTF-8", b'{"x": "\xed\xa0\x80"}', "refuse", 400, "body"),
        Case("top-level array", b"[1]", "refuse"),
        Case("empty object", b"{}", "refuse"),
        Case("robots.txt", b"", "refuse", 404, "path", path="/robots.txt", method="GET"),
        Case("stalled body", json.dumps(doc).encode(), "refuse", 408, "body", slow=True),
        Case(
            "declared over the limit with Expect",
            b"{}",
            "refuse",
            413,
            "body",
            headers={"Expect": "100-continue"},
            declared=50 * 1024 * 1024,
        ),
    ]


GCP_SAMPLES = REPO / "config" / "samples" / "gcp"
GCP_INCIDENT: dict[str, Any] = json.loads(
    (GCP_SAMPLES / "monitoring-incident-k8s-container-open.json").read_text()
)


def _push(data: bytes, attributes: dict[str, str] | None = None, message_id: str = "m-1") -> bytes:
    return json.dumps(push_body(data, attributes, message_id)).encode()


def _payload(function: str) -> tuple[Any, dict[str, str]]:
    if function == "kubernetes":
        return {**K8S_EVENT, "note": "MARK"}, {}
    if function == "kafka":
        return {"group": "MARK", "topic": "orders", "lag": 90000}, KAFKA_ATTRIBUTES
    if function == "gcp":
        return {**GCP_INCIDENT, "incident": {**GCP_INCIDENT["incident"], "summary": "MARK"}}, {}
    return {"payload": {"op": "u", "after": {"id": "MARK"}}}, {}


def pubsub_cases(function: str) -> list[Case]:
    """Envelope-level bad input for every Pub/Sub function, payload-level for those that parse."""
    b64 = base64.b64encode(b"{}").decode()
    cases = [
        Case("empty object", b"{}", "refuse", 400, "body"),
        Case("not JSON", b"hello", "refuse", 400, "body"),
        Case("top-level array", b'[{"message": {}}]', "refuse", 400, "body"),
        Case("nested envelope", nested(100_000).encode(), "refuse", 400, "body"),
        Case(
            "envelope with 1e999",
            b'{"message": {"data": "", "messageId": "1"}, "subscription": "s", "x": 1e999}',
            "refuse",
            400,
            "body",
        ),
        Case(
            "structured CloudEvent without type",
            json.dumps({"specversion": "1.0", "id": "1", "source": "//x"}).encode(),
            "refuse",
            400,
            "type",
            content_type="application/cloudevents+json",
        ),
        Case(
            "binary CloudEvent without ce-type",
            b"{}",
            "refuse",
            400,
            "ce-type",
            headers={"ce-specversion": "1.0", "ce-id": "1", "ce-source": "//x"},
        ),
        Case(
            "legacy event of another type",
            json.dumps(
                {
                    "context": {
                        "eventId": "1",
                        "eventType": "google.storage.object.finalize",
                        "resource": "r",
                    },
                    "data": {},
                }
            ).encode(),
            "refuse",
            400,
            "context.eventType",
        ),
        Case("GET", b"", "refuse", 405, "method", method="GET", content_type=None),
        Case(
            "attributes as a list",
            json.dumps(
                {
                    "message": {"data": b64, "messageId": "1", "attributes": ["a"]},
                    "subscription": "s",
                }
            ).encode(),
            "ack",
            field="message.attributes",
        ),
        Case(
            "message without messageId",
            json.dumps({"message": {"data": b64}, "subscription": "s"}).encode(),
            "ack",
            field="message.messageId",
        ),
        Case(
            "message not an object",
            json.dumps({"message": "x", "subscription": "s"}).encode(),
            "ack",
            field="message",
        ),
        Case(
            "surrogate in an attribute",
            _push(b"{}", {"k": "MARK"}).replace(b"MARK", b"\\ud800"),
            "ack",
            field="message.attributes.k",
        ),
        Case(
            "surrogate in the messageId",
            _push(b"{}", message_id="MARK").replace(b"MARK", b"\\udc00"),
            "ack",
            field="message.messageId",
        ),
        Case(
            "binary CloudEvent with nested data",
            nested(100_000).encode(),
            "ack",
            field="data",
            headers={
                "ce-specversion": "1.0",
                "ce-id": "1",
                "ce-source": "//x",
                "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
            },
        ),
        Case("stalled body", _push(b"{}"), "refuse", 408, "body", slow=True),
        Case(
            "declared over the limit",
            b"{}",
            "refuse",
            413,
            "body",
            declared=guard.MAX_DELIVERY_BYTES + 1,
        ),
    ]
    if function not in PAYLOAD_FUNCTIONS:
        return cases
    doc, attributes = _payload(function)
    data_field = "message.data" if function in ("kubernetes", "gcp") else "data"
    where = {
        "kubernetes": "note",
        "kafka": "group",
        "cdc": "payload.after.id",
        "gcp": "incident.summary",
    }[function]
    return [
        *cases,
        Case(
            "data with a lone surrogate",
            _push(with_escape(doc, "MARK", "\\ud800"), attributes),
            "ack",
            field=where,
        ),
        Case(
            "data nested 100000 deep",
            _push(nested(100_000).encode(), attributes),
            "ack",
            field=data_field,
        ),
        Case(
            "data with 1e999",
            _push(json.dumps(doc).replace('"MARK"', "1e999").encode(), attributes),
            "ack",
            field=data_field,
        ),
        Case(
            "data with NaN",
            _push(json.dumps(doc).replace('"MARK"', "NaN").encode(), attributes),
            "ack",
            field=data_field,
        ),
        Case("data not UTF-8", _push(b'{"x": "\xff"}', attributes), "ack", field="message.data"),
        Case(
            "message without data",
            json.dumps(
                {"message": {"messageId": "1", "attributes": attributes}, "subscription": "s"}
            ).encode(),
            "ack",
        ),
    ]


class SlowStream:
    """A request body that arrives slower than any deadline."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def read(self, size: int = -1) -> bytes:
        time.sleep(BODY_READ_TIMEOUT_S * 0.6)
        chunk, self.body = self.body[:1], self.body[1:]
        return chunk


@pytest.fixture
def logged() -> Iterator[list[logging.LogRecord]]:
    """Warnings of the transports (the functions' own logging setup replaces root handlers)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.WARNING)
    logger = logging.getLogger("khook_core.transport")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def client_of(
    function_env: Callable[..., Any], http_client: Callable[[str], Any], tmp_path: Path
) -> Callable[[str], Any]:
    def build(function: str) -> Any:
        function_env(
            plugins=SMALL_LIMIT_PLUGINS,
            KHOOK_STATE=f"sqlite:{tmp_path / 'state.db'}",
            KHOOK_ALERTMANAGER_TOKEN=TOKEN,
            KHOOK_WEBHOOK_TOKEN=TOKEN,
            KHOOK_BODY_READ_TIMEOUT=str(BODY_READ_TIMEOUT_S),
        )
        return http_client(function)

    return build


def post(
    client: Any, case: Case, path: str, extra: dict[str, str] | None = None
) -> tuple[Any, float]:
    headers = {**(extra or {}), **case.headers}
    if case.content_type is not None:
        headers["Content-Type"] = case.content_type
    environ: dict[str, Any] = {}
    if case.slow:
        environ["wsgi.input"] = SlowStream(case.body)
    if case.declared is not None:
        environ["CONTENT_LENGTH"] = str(case.declared)
    started = time.monotonic()
    reply = client.open(
        path, method=case.method, data=case.body, headers=headers, environ_overrides=environ
    )
    return reply, time.monotonic() - started


def check(reply: Any, elapsed: float, case: Case, records: list[logging.LogRecord]) -> None:
    assert reply.status_code < 500, reply.data[:300]
    assert reply.mimetype == "application/json", reply.data[:300]
    assert b"<html" not in reply.data.lower()
    body = json.loads(reply.data)
    limit = BODY_READ_TIMEOUT_S + ANSWER_DEADLINE_S if case.slow else ANSWER_DEADLINE_S
    assert elapsed < limit
    if case.expect == "refuse":
        assert 400 <= reply.status_code < 500, body
        assert body["status"] == reply.status_code
        assert body["error"]
        if case.status is not None:
            assert reply.status_code == case.status, body
        if case.field is not None:
            assert body["field"] == case.field, body
        return
    assert reply.status_code == 200, body
    if case.field is not None:
        errors = [getattr(r, "error", {}) for r in records if r.levelno == logging.WARNING]
        assert any(e.get("field") == case.field for e in errors), [r.getMessage() for r in records]


MATRIX_HTTP = [(f, c) for f in HTTP_FUNCTIONS for c in http_cases(f)]
MATRIX_PUBSUB = [(f, c) for f in PUBSUB_FUNCTIONS for c in pubsub_cases(f)]


@pytest.mark.parametrize(("function", "case"), MATRIX_HTTP, ids=lambda v: str(v))
def test_http_functions_answer_bad_input_with_a_json_4xx(
    client_of: Callable[[str], Any], logged: list[logging.LogRecord], function: str, case: Case
) -> None:
    reply, elapsed = post(client_of(function), case, case.path, BEARER)
    check(reply, elapsed, case, logged)


@pytest.mark.parametrize(("function", "case"), MATRIX_PUBSUB, ids=lambda v: str(v))
def test_pubsub_functions_refuse_or_acknowledge_bad_input_in_json(
    client_of: Callable[[str], Any], logged: list[logging.LogRecord], function: str, case: Case
) -> None:
    reply, elapsed = post(client_of(function), case, TOPIC_PATH)
    check(reply, elapsed, case, logged)


@pytest.mark.parametrize("function", PUBSUB_FUNCTIONS)
def test_a_crash_is_a_json_500_that_asks_for_redelivery(
    client_of: Callable[[str], Any], function: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one 5xx a function gives on purpose: an uncaught failure, so Pub/Sub retries."""
    client = client_of(function)
    import khook_core.runtime

    def broken() -> Any:
        raise RuntimeError("store down")

    monkeypatch.setattr(khook_core.runtime, "get_runtime", broken)
    reply = client.post(
        TOPIC_PATH,
        data=_push(json.dumps(K8S_EVENT).encode(), KAFKA_ATTRIBUTES),
        content_type="application/json",
    )
    assert reply.status_code == 500
    assert reply.mimetype == "application/json"
    assert reply.headers["X-Google-Status"] == "crash"
    assert "store down" not in reply.get_data(as_text=True)


EXISTING = [("alertmanager", c) for c in ALERTMANAGER_CASES] + [
    ("webhook", c) for c in WEBHOOK_CASES
]


@pytest.mark.parametrize(("function", "case"), EXISTING, ids=lambda v: str(v))
def test_the_existing_request_cases_are_never_5xx_nor_html(
    client_of: Callable[[str], Any], function: str, case: HttpCase
) -> None:
    started = time.monotonic()
    reply = send_http_case(client_of(function), case)
    assert time.monotonic() - started < ANSWER_DEADLINE_S
    assert reply.status_code < 500
    assert reply.mimetype == "application/json"


ENVELOPE_KEYS = [
    "message",
    "subscription",
    "context",
    "data",
    "messageId",
    "attributes",
    "publishTime",
    "specversion",
    "id",
    "source",
    "type",
    "eventId",
    "eventType",
    "resource",
    "timestamp",
    "@type",
    "name",
    "service",
]


def _envelope_values() -> Any:
    from hypothesis import strategies as st

    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.text(max_size=6)
        | st.sampled_from(
            [
                "e30=",
                "1.0",
                "1",
                "google.pubsub.topic.publish",
                "google.cloud.pubsub.topic.v1.messagePublished",
                "//x",
                "projects/p/topics/t",
            ]
        )
    )
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.sampled_from(ENVELOPE_KEYS), children, max_size=5)
        ),
        max_leaves=15,
    )


def test_any_envelope_shape_is_answered_in_json_never_5xx(client_of: Callable[[str], Any]) -> None:
    """Push envelopes, CloudEvents and background events with every field of the wrong
    shape: the framework must never be reached with something it cannot convert."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    client = client_of("kubernetes")

    values = _envelope_values()
    fields = st.dictionaries(st.sampled_from(ENVELOPE_KEYS), values, max_size=6)
    good_message = st.fixed_dictionaries(
        {"messageId": st.sampled_from(["1", "m-2"]), "data": st.sampled_from(["e30=", ""])},
        optional={k: values for k in ("attributes", "publishTime", "orderingKey")},
    )
    push = st.fixed_dictionaries(
        {"message": good_message | fields | values, "subscription": values},
        optional={k: values for k in ENVELOPE_KEYS if k not in ("message", "subscription")},
    )
    legacy = st.fixed_dictionaries(
        {"context": fields | values}, optional={"data": fields | values, "message": values}
    )
    event = st.fixed_dictionaries(
        {},
        optional={
            k: values
            for k in ("specversion", "id", "source", "type", "data", "data_base64", "time")
        },
    )

    binary = st.fixed_dictionaries(
        {},
        optional={
            f"ce-{k}": st.sampled_from(["1.0", "0.3", "2", "", "x", "//s"])
            for k in ("specversion", "id", "source", "type", "time", "datacontenttype")
        },
    )

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        body=st.one_of(values, push, legacy, event),
        kind=st.sampled_from(["application/json", "application/cloudevents+json", "text/plain"]),
        headers=st.just({}) | binary,
    )
    def probe(body: Any, kind: str, headers: dict[str, str]) -> None:
        reply = client.post(TOPIC_PATH, data=json.dumps(body), content_type=kind, headers=headers)
        assert reply.status_code < 500, (body, reply.data[:300])
        assert reply.mimetype == "application/json", (body, reply.data[:300])

    probe()
