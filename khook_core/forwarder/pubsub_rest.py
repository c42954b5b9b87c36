"""Pub/Sub's REST publish API over urllib3: one ``topics.publish`` request per batch.

The forwarder only publishes, so it speaks ``POST /v1/projects/P/topics/T:publish`` itself
instead of loading google-cloud-pubsub and grpc (some 25 MiB of RSS before the first event).
urllib3 is the Kubernetes client's own transport, already loaded, so publishing costs no HTTP
library of its own (httpx would add 4-5 MiB). The emulator serves the same API over plain HTTP
without credentials.

A request is all or nothing: either every message in it gets an id or none does. The outcome
of each message is what ``publish`` returns, so the sender above retries or drops them one by
one (``publishing.Publisher``); this client never retries by itself. A request Pub/Sub refuses
as invalid (400, 413: a message too large or a bad attribute) is sent again one message a
request, so one bad message costs only itself.

Credentials (``token_source``): none for the emulator; a service-account or user credentials
file through google-auth (imported only then); otherwise the metadata server's token for the
workload's service account (GKE Workload Identity, Compute Engine), fetched with the same
connection pool. A token is refreshed a minute before it expires and after a 401.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import urllib3

from khook_core.forwarder.filtering import Outbound

if TYPE_CHECKING:
    from khook_core.forwarder.config import ForwarderSettings

logger = logging.getLogger(__name__)

PUBSUB_SCOPE = "https://www.googleapis.com/auth/pubsub"
REQUEST_BYTES = 7 * 1024 * 1024
"""Most base64 bytes of message data in one request: Pub/Sub's limit is 10 MB a request, and
base64 plus JSON framing add about a third."""
PERMANENT_STATUSES = frozenset({400, 413})
"""Answers no retry can change (a message Pub/Sub refuses); every other failure is retried."""
REFRESH_MARGIN = 60.0
"""Seconds before its expiry a token is replaced."""
METADATA_TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"  # noqa: S105


class PublishError(Exception):
    """A message was not published; ``permanent`` when sending it again cannot help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class TokenSource(Protocol):
    """An OAuth access token for Pub/Sub, refreshed when ``stale`` is set or it expires."""

    def token(self, *, stale: bool = False) -> str: ...


class MetadataToken:
    """The token of the workload's service account from the metadata server.

    Args:
        http: the connection pool to ask with.
        host: ``host[:port]`` of the metadata server (``GCE_METADATA_HOST`` overrides it).
        clock: monotonic seconds (tests).
    """

    def __init__(
        self, http: urllib3.PoolManager, host: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._http = http
        self._url = f"http://{host}{METADATA_TOKEN_PATH}"
        self._clock = clock
        self._lock = threading.Lock()
        self._token = ""
        self._expires = 0.0

    def token(self, *, stale: bool = False) -> str:
        with self._lock:
            if stale or not self._token or self._clock() > self._expires - REFRESH_MARGIN:
                reply = self._http.request(
                    "GET",
                    self._url,
                    fields={"scopes": PUBSUB_SCOPE},
                    headers={"Metadata-Flavor": "Google"},
                    timeout=10.0,
                    retries=False,
                )
                if reply.status != 200:
                    raise OSError(f"metadata server: HTTP {reply.status}: {reply.data[:200]!r}")
                body = json.loads(reply.data)
                self._token = str(body["access_token"])
                self._expires = self._clock() + float(body.get("expires_in", 300))
            return self._token


class FileCredentialsToken:
    """A credentials file (service-account key, ``gcloud auth application-default login``)
    read by google-auth, which refreshes its token over urllib3."""

    def __init__(self, path: Path) -> None:
        import google.auth
        from google.auth.transport.urllib3 import Request

        self._credentials, _ = google.auth.load_credentials_from_file(  # type: ignore[no-untyped-call]
            str(path), scopes=[PUBSUB_SCOPE]
        )
        self._request = Request(urllib3.PoolManager())  # type: ignore[no-untyped-call]
        self._lock = threading.Lock()

    def token(self, *, stale: bool = False) -> str:
        with self._lock:
            if stale or not self._credentials.valid:
                self._credentials.refresh(self._request)
            return str(self._credentials.token)


def gcloud_credentials_file(home: Path) -> Path | None:
    """The credentials ``gcloud auth application-default login`` writes, when present."""
    path = home / ".config" / "gcloud" / "application_default_credentials.json"
    return path if path.is_file() else None


class RestPublishClient:
    """Publishes batches to ``endpoint`` (``https://pubsub.googleapis.com`` or an emulator).

    Args:
        endpoint: scheme and host of the API.
        tokens: where the bearer token comes from; None sends none (the emulator).
        http: the connection pool (owned: ``stop`` closes it).
    """

    def __init__(
        self, endpoint: str, tokens: TokenSource | None, http: urllib3.PoolManager
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.tokens = tokens
        self._http = http

    def publish(
        self, topic: str, messages: Sequence[Outbound], timeout: float
    ) -> list[PublishError | None]:
        """Publish ``messages`` to ``topic`` (``projects/P/topics/T``): None for each
        published message, its error for the others."""
        outcomes: list[PublishError | None] = []
        for chunk in _chunks(messages):
            error = self._send(topic, chunk, timeout)
            if error is not None and error.permanent and len(chunk) > 1:
                outcomes += [self._send(topic, [one], timeout) for one in chunk]
            else:
                outcomes += [error] * len(chunk)
        return outcomes

    def stop(self) -> None:
        self._http.clear()

    def _send(
        self, topic: str, messages: Sequence[Outbound], timeout: float
    ) -> PublishError | None:
        body = request_body(messages)
        url = f"{self.endpoint}/v1/{topic}:publish"
        try:
            reply = self._post(url, body, timeout, stale=False)
            if reply.status == 401 and self.tokens is not None:
                reply = self._post(url, body, timeout, stale=True)
        except (urllib3.exceptions.HTTPError, OSError, ValueError, KeyError) as exc:
            return PublishError(f"{type(exc).__name__}: {exc}", permanent=False)
        if reply.status != 200:
            text = reply.data[:300].decode(errors="replace")
            return PublishError(
                f"HTTP {reply.status}: {text}", permanent=reply.status in PERMANENT_STATUSES
            )
        try:
            ids = json.loads(reply.data).get("messageIds", [])
        except (ValueError, AttributeError):
            ids = []
        if len(ids) != len(messages):
            return PublishError(
                f"{len(ids)} message ids for {len(messages)} messages", permanent=False
            )
        return None

    def _post(
        self, url: str, body: bytes, timeout: float, *, stale: bool
    ) -> urllib3.BaseHTTPResponse:
        headers = {"Content-Type": "application/json"}
        if self.tokens is not None:
            headers["Authorization"] = f"Bearer {self.tokens.token(stale=stale)}"
        # No retries here: a failure goes back to the sender, which backs off and retries.
        return self._http.request(
            "POST", url, body=body, headers=headers, timeout=timeout, retries=False
        )


_ATTRIBUTES = json.JSONEncoder(separators=(",", ":")).encode


def request_body(messages: Sequence[Outbound]) -> bytes:
    """The ``topics.publish`` request: ``{"messages":[{"data":…,"attributes":{…}},…]}``.

    Written as bytes: base64 text needs no JSON escaping, so only each message's few attributes
    go through the encoder (a storm's batch carries hundreds of kilobytes of base64, which the
    encoder would otherwise scan character by character)."""
    parts = []
    for message in messages:
        data = b'{"data":"' + base64.b64encode(message.data)
        if message.attributes:
            parts.append(
                data + b'","attributes":' + _ATTRIBUTES(message.attributes).encode() + b"}"
            )
        else:
            parts.append(data + b'"}')
    return b'{"messages":[' + b",".join(parts) + b"]}"


def _chunks(messages: Sequence[Outbound]) -> list[Sequence[Outbound]]:
    """``messages`` split so that no request carries more than ``REQUEST_BYTES`` of data."""
    chunks: list[Sequence[Outbound]] = []
    start, size = 0, 0
    for i, message in enumerate(messages):
        cost = 4 * len(message.data) // 3 + 4
        if i > start and size + cost > REQUEST_BYTES:
            chunks.append(messages[start:i])
            start, size = i, 0
        size += cost
    if start < len(messages):
        chunks.append(messages[start:])
    return chunks


def rest_client(settings: ForwarderSettings, home: Path | None = None) -> RestPublishClient:
    """The client for the configured emulator, else Pub/Sub with ``token_source``'s token."""
    http = urllib3.PoolManager(num_pools=2, maxsize=2, ca_certs=_ca_bundle())
    if settings.emulator_host:
        return RestPublishClient(f"http://{settings.emulator_host}", None, http)
    return RestPublishClient(settings.pubsub_url, token_source(settings, http, home), http)


def _ca_bundle() -> str | None:
    """certifi's CA bundle (installed with the Kubernetes client), else the system's."""
    try:
        import certifi
    except ImportError:
        return None
    return str(certifi.where())


def token_source(
    settings: ForwarderSettings, http: urllib3.PoolManager, home: Path | None = None
) -> TokenSource:
    """Application Default Credentials, in their order, minus what a forwarder never runs on:
    ``credentials_file`` (``GOOGLE_APPLICATION_CREDENTIALS``), then gcloud's user credentials,
    then the metadata server."""
    if settings.credentials_file:
        return FileCredentialsToken(Path(settings.credentials_file))
    user = gcloud_credentials_file(home or Path.home())
    if user is not None:
        return FileCredentialsToken(user)
    return MetadataToken(http, settings.metadata_host)
