"""The REST publisher against the real Pub/Sub emulator, and its credentials.

Google's token endpoints and the cloud API's authentication cannot run locally, so the auth
tests put two small stand-ins in front of the real emulator: a metadata server answering the
token request as GKE's does, and a front that checks the bearer token (refusing the first one,
as Pub/Sub refuses a revoked token) before relaying the request to the emulator.
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import urllib3
from hypothesis import given
from hypothesis import strategies as st

from khook_core.forwarder.config import ForwarderSettings
from khook_core.forwarder.filtering import Outbound
from khook_core.forwarder.pubsub_rest import (
    METADATA_TOKEN_PATH,
    PUBSUB_SCOPE,
    MetadataToken,
    PublishError,
    request_body,
    rest_client,
)
from tests.support.pubsub import PubSubEmulator, TcpGate

ATTRIBUTES = {"khook.source": "kubernetes", "khook.reason": "BackOff"}


def message(i: int) -> Outbound:
    return Outbound(json.dumps({"n": i}).encode(), dict(ATTRIBUTES))


class StandIn:
    """A local HTTP server answering with ``respond(method, path, headers, body)``; records
    every request as (method, path, headers)."""

    def __init__(
        self, respond: Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, Any]]]
    ) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                stand_in.requests.append((self.command, self.path, headers))
                status, reply = respond(self.command, self.path, headers, body)
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stand_in() -> Iterator[Callable[..., StandIn]]:
    servers: list[StandIn] = []

    def make(respond: Callable[..., tuple[int, dict[str, Any]]]) -> StandIn:
        servers.append(StandIn(respond))
        return servers[-1]

    yield make
    for server in servers:
        server.stop()


def metadata_server(stand_in: Callable[..., StandIn], expires_in: int = 3600) -> StandIn:
    """Answers the token request with ``tok-1``, ``tok-2``, ... when asked as GKE requires."""
    issued = iter(range(1, 1000))

    def respond(
        method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        if headers.get("metadata-flavor") != "Google" or not path.startswith(METADATA_TOKEN_PATH):
            return 403, {"error": "missing Metadata-Flavor: Google"}
        return 200, {
            "access_token": f"tok-{next(issued)}",
            "expires_in": expires_in,
            "token_type": "Bearer",
        }

    return stand_in(respond)


def authenticating_front(
    stand_in: Callable[..., StandIn], emulator: PubSubEmulator, refused: set[str]
) -> StandIn:
    """Pub/Sub's authentication in front of the emulator: no token, or a ``refused`` one, is
    answered 401; anything else is relayed to the emulator."""

    def respond(
        method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        token = headers.get("authorization", "").removeprefix("Bearer ")
        if not token or token in refused:
            return 401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}}
        relay = urllib.request.Request(
            f"http://{emulator.host}{path}",
            data=body,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(relay, timeout=10) as reply:
            return reply.status, json.loads(reply.read())

    return stand_in(respond)


def test_a_batch_is_published_with_its_data_and_attributes(pubsub_emulator: PubSubEmulator):
    topic = pubsub_emulator.create_topic()
    subscription = pubsub_emulator.create_subscription(topic)
    client = rest_client(ForwarderSettings(emulator_host=pubsub_emulator.host))
    try:
        outcomes = client.publish(
            pubsub_emulator.topic_path(topic), [message(i) for i in range(5)], 10.0
        )
    finally:
        client.stop()

    assert outcomes == [None] * 5
    got = pubsub_emulator.pull_until(subscription, 5)
    assert sorted(m.json()["n"] for m in got) == list(range(5))
    assert all(m.attributes == ATTRIBUTES for m in got)


def test_unusual_data_and_attributes_arrive_exactly_as_sent(pubsub_emulator: PubSubEmulator):
    topic = pubsub_emulator.create_topic()
    subscription = pubsub_emulator.create_subscription(topic)
    sent = [
        Outbound('{"note":"\u00e9\u2028 \\" quoted"}'.encode(), {"khook.namespace": 'équipe "a"'}),
        Outbound(bytes(range(256)), {}),  # not text at all, and no attributes
        Outbound(b"x", {"khook.reason": "\n\t</script>"}),
    ]
    client = rest_client(ForwarderSettings(emulator_host=pubsub_emulator.host))
    try:
        outcomes = client.publish(pubsub_emulator.topic_path(topic), sent, 10.0)
    finally:
        client.stop()

    assert outcomes == [None] * 3
    got = pubsub_emulator.pull_until(subscription, 3)
    assert sorted((m.data, m.attributes) for m in got) == sorted(
        (m.data, m.attributes) for m in sent
    )


@given(
    batch=st.lists(
        st.tuples(st.binary(max_size=64), st.dictionaries(st.text(), st.text(), max_size=3)),
        max_size=5,
    )
)
def test_the_request_body_is_the_publish_apis_json(batch: list[tuple[bytes, dict[str, str]]]):
    messages = [Outbound(data, attributes) for data, attributes in batch]

    body = json.loads(request_body(messages))

    assert body == {
        "messages": [
            {"data": base64.b64encode(data).decode(), **({"attributes": a} if a else {})}
            for data, a in batch
        ]
    }


def test_a_message_pubsub_refuses_costs_only_itself(pubsub_emulator: PubSubEmulator):
    topic = pubsub_emulator.create_topic()
    subscription = pubsub_emulator.create_subscription(topic)
    empty = Outbound(b"", {})  # Pub/Sub refuses a message with neither data nor attributes
    client = rest_client(ForwarderSettings(emulator_host=pubsub_emulator.host))
    try:
        outcomes = client.publish(
            pubsub_emulator.topic_path(topic), [message(0), empty, message(2)], 10.0
        )
    finally:
        client.stop()

    assert outcomes[0] is None
    assert outcomes[2] is None
    assert isinstance(outcomes[1], PublishError)
    assert outcomes[1].permanent
    got = pubsub_emulator.pull_until(subscription, 2, quiet=0.3)
    assert sorted(m.json()["n"] for m in got) == [0, 2]


def test_an_unreachable_pubsub_fails_the_batch_for_a_retry(
    pubsub_emulator: PubSubEmulator,
    tcp_gate: Callable[[int], TcpGate],
):
    gate = tcp_gate(pubsub_emulator.port)
    gate.close()
    topic = pubsub_emulator.create_topic()
    client = rest_client(ForwarderSettings(emulator_host=gate.host))
    try:
        outcomes = client.publish(pubsub_emulator.topic_path(topic), [message(0), message(1)], 2.0)
    finally:
        client.stop()

    assert all(isinstance(o, PublishError) and not o.permanent for o in outcomes)


def test_the_metadata_servers_token_is_sent_and_replaced_after_a_401(
    pubsub_emulator: PubSubEmulator,
    stand_in: Callable[..., StandIn],
    tmp_path: Path,
):
    topic = pubsub_emulator.create_topic()
    subscription = pubsub_emulator.create_subscription(topic)
    metadata = metadata_server(stand_in)
    front = authenticating_front(stand_in, pubsub_emulator, refused={"tok-1"})
    settings = ForwarderSettings(pubsub_url=f"http://{front.host}", metadata_host=metadata.host)
    client = rest_client(settings, home=tmp_path)  # no gcloud credentials in this home
    try:
        first = client.publish(pubsub_emulator.topic_path(topic), [message(0)], 10.0)
        second = client.publish(pubsub_emulator.topic_path(topic), [message(1)], 10.0)
    finally:
        client.stop()

    assert first == second == [None]
    assert [h["authorization"] for _, _, h in front.requests] == [
        "Bearer tok-1",
        "Bearer tok-2",
        "Bearer tok-2",
    ]  # refused, retried, then reused
    assert len(metadata.requests) == 2
    method, path, headers = metadata.requests[0]
    assert (method, headers["metadata-flavor"]) == ("GET", "Google")
    assert path.startswith(METADATA_TOKEN_PATH)
    assert "scopes=" + urllib.parse.quote(PUBSUB_SCOPE, safe="") in path
    assert sorted(m.json()["n"] for m in pubsub_emulator.pull_until(subscription, 2)) == [0, 1]


def test_a_token_is_replaced_a_minute_before_it_expires(stand_in: Callable[..., StandIn]):
    metadata = metadata_server(stand_in, expires_in=120)
    now = [1000.0]
    tokens = MetadataToken(urllib3.PoolManager(), metadata.host, clock=lambda: now[0])

    assert tokens.token() == "tok-1"
    now[0] += 59
    assert tokens.token() == "tok-1"
    now[0] += 2  # 61 s in: less than a minute left
    assert tokens.token() == "tok-2"


def service_account_file(path: Path, token_uri: str) -> Path:
    """A service-account key file (a fresh RSA key) whose token endpoint is ``token_uri``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "p1",
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": "forwarder@p1.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": token_uri,
            }
        )
    )
    return path


def token_endpoint(stand_in: Callable[..., StandIn]) -> StandIn:
    """OAuth's token endpoint: a signed JWT assertion in, ``file-tok`` out."""

    def respond(
        method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        form = urllib.parse.parse_qs(body.decode())
        assertion = form["assertion"][0]
        claims = json.loads(base64.urlsafe_b64decode(assertion.split(".")[1] + "=="))
        if claims.get("scope") != PUBSUB_SCOPE:
            return 400, {"error": "invalid_scope"}
        return 200, {"access_token": "file-tok", "expires_in": 3600, "token_type": "Bearer"}

    return stand_in(respond)


@pytest.mark.parametrize("where", ["credentials_file", "gcloud"])
def test_a_credentials_file_replaces_the_metadata_server(
    where: str,
    pubsub_emulator: PubSubEmulator,
    stand_in: Callable[..., StandIn],
    tmp_path: Path,
):
    topic = pubsub_emulator.create_topic()
    subscription = pubsub_emulator.create_subscription(topic)
    oauth = token_endpoint(stand_in)
    metadata = metadata_server(stand_in)
    front = authenticating_front(stand_in, pubsub_emulator, refused=set())
    if where == "credentials_file":
        key = service_account_file(tmp_path / "key.json", f"http://{oauth.host}/token")
        settings = ForwarderSettings(
            pubsub_url=f"http://{front.host}",
            metadata_host=metadata.host,
            credentials_file=str(key),
        )
    else:
        service_account_file(
            tmp_path / ".config" / "gcloud" / "application_default_credentials.json",
            f"http://{oauth.host}/token",
        )
        settings = ForwarderSettings(pubsub_url=f"http://{front.host}", metadata_host=metadata.host)
    client = rest_client(settings, home=tmp_path)
    try:
        assert client.publish(pubsub_emulator.topic_path(topic), [message(7)], 10.0) == [None]
    finally:
        client.stop()

    assert [h["authorization"] for _, _, h in front.requests] == ["Bearer file-tok"]
    assert metadata.requests == []
    assert [m.json()["n"] for m in pubsub_emulator.pull_until(subscription, 1)] == [7]
