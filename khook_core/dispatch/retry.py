"""Bounded retries with backoff inside a function's time budget, shared by every dispatcher.

What is retried, and why:

- connection failures (refused, DNS, connect timeout, pool timeout): the request never left,
  so sending again cannot duplicate anything;
- HTTP 429 and 5xx (except 501/505, which say "never"): the server said "not now";
- read/write timeouts and dropped connections only when the caller says the request is
  ``idempotent``: the request may have arrived. A webhook carries ``Idempotency-Key`` and is
  retried; an A2A send is not, because no A2A server dedupes on ``messageId`` and a second send
  would start a second agent run. The error goes up as ``OutcomeUnknownError`` instead: the
  pipeline keeps the claim marked uncertain, and the redelivery asks the agent whether the
  message arrived before sending it again (see docs/dispatch.md, "Read timeouts and duplicate
  runs").

Everything else comes back to the caller as the response (2xx, 3xx, 4xx) to classify.

All of it happens inside one ``Deadline``: ``KHOOK_DISPATCH_BUDGET``, or what is left of the
function invocation (``DispatchRequest.time_budget``) when that is less, so several dispatches in
one invocation cannot outrun the function's timeout.
"""

from __future__ import annotations

import email.utils
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx

from khook_core.errors import DispatchError, OutcomeUnknownError, TransientError

if TYPE_CHECKING:
    from khook_core.dispatch.base import DispatchRequest
    from khook_core.settings import DispatchSettings

logger = logging.getLogger(__name__)

ERROR_TEXT_MAX_CHARS = 300
"""How much of a server's error body goes into our messages: enough for a sentence or a JSON
error object, not a whole HTML error page."""
MIN_ATTEMPT_S = 0.05
"""An attempt with less time than this left is not started: it could only time out."""
NEVER_RETRY_5XX = frozenset({501, 505})


def error_text(response: httpx.Response) -> str:
    """The first line(s) of a response body, whitespace collapsed and capped."""
    try:
        text = response.text
    except (UnicodeDecodeError, httpx.HTTPError):
        text = repr(response.content[:ERROR_TEXT_MAX_CHARS])
    text = " ".join(text.split())
    if len(text) > ERROR_TEXT_MAX_CHARS:
        text = text[: ERROR_TEXT_MAX_CHARS - 1] + "…"
    return text or "(empty body)"


def retryable_status(status: int) -> bool:
    return status == 429 or (status >= 500 and status not in NEVER_RETRY_5XX)


def retry_after(response: httpx.Response, now: Callable[[], datetime]) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), or None."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now()).total_seconds())


@dataclass
class Deadline:
    """The time one dispatch may still spend (all attempts, sessions and card reads)."""

    budget: float
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def remaining(self) -> float:
        return self.budget - (self.clock() - self.started)


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts and timeouts for one kind of target."""

    retries: int = 2
    backoff: float = 0.5
    max_backoff: float = 5.0
    read_timeout: float = 30.0
    connect_timeout: float = 5.0

    @classmethod
    def from_settings(cls, settings: DispatchSettings, *, read_timeout: float) -> RetryPolicy:
        """The retry settings every dispatcher shares, with its own read timeout."""
        return cls(
            retries=settings.dispatch_retries,
            backoff=settings.dispatch_backoff,
            max_backoff=settings.dispatch_max_backoff,
            read_timeout=read_timeout,
            connect_timeout=settings.connect_timeout,
        )

    def delay(self, retry: int) -> float:
        """Exponential, with "equal jitter": half fixed, half random, so retries of many
        instances spread out but never collapse to zero."""
        full = min(self.max_backoff, self.backoff * 2.0**retry)
        return full / 2 + random.uniform(0, full / 2)  # noqa: S311 - jitter, not security


@dataclass
class Sender:
    """Sends one request with ``policy`` inside ``deadline``; injectable clock and sleep."""

    client: httpx.Client
    policy: RetryPolicy
    sleep: Callable[[float], None] = time.sleep
    wall_clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def send(
        self,
        method: str,
        url: str,
        *,
        what: str,
        deadline: Deadline,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        idempotent: bool,
        read_timeout: float | None = None,
    ) -> httpx.Response:
        """The final response that is not worth retrying (2xx, 3xx, 4xx but 429).

        Args:
            what: names the target in errors, e.g. ``agent kagent/k8s-agent at http://…``.
            idempotent: whether a request that may have arrived can be sent again.

        Raises:
            TransientError: retries exhausted, budget spent, or a non-idempotent request that
                may have arrived failed; the message names the target and the last failure.
            DispatchError: the URL or the request itself is invalid (retrying cannot help).
        """
        policy = self.policy
        last = ""
        attempts = 0
        while True:
            remaining = deadline.remaining()
            if remaining < MIN_ATTEMPT_S:
                raise TransientError(
                    f"{what}: time budget spent after {attempts} attempt(s)"
                    + (f"; last failure: {last}" if last else "")
                )
            timeout = httpx.Timeout(
                min(read_timeout or policy.read_timeout, remaining),
                connect=min(policy.connect_timeout, remaining),
            )
            attempts += 1
            wait: float | None = None
            try:
                response = self.client.request(
                    method, url, headers=headers, content=content, timeout=timeout
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                last = f"{type(exc).__name__}: {exc or 'no detail'}"
                cause: Exception = exc
            except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
                raise DispatchError(
                    f"{what}: invalid request ({exc}); check the URL and "
                    "headers in the hook and the environment"
                ) from exc
            except httpx.TransportError as exc:  # timeouts while reading, dropped connections
                last = f"{type(exc).__name__}: {exc or 'no detail'}"
                cause = exc
                if not idempotent:
                    raise OutcomeUnknownError(
                        f"{what}: {last} (the request may have arrived, so it is not "
                        "repeated now; the retry asks the agent before sending again)"
                    ) from exc
            else:
                if not retryable_status(response.status_code):
                    return response
                last = f"HTTP {response.status_code}: {error_text(response)}"
                cause = httpx.HTTPStatusError(last, request=response.request, response=response)
                wait = retry_after(response, self.wall_clock)
                response.close()
            if attempts > policy.retries:
                raise TransientError(f"{what}: {last} (after {attempts} attempt(s))") from cause
            delay = max(policy.delay(attempts - 1), wait or 0.0)
            if delay + MIN_ATTEMPT_S > deadline.remaining():
                raise TransientError(
                    f"{what}: {last}; no time left for a retry in "
                    f"{delay:.1f} s (after {attempts} attempt(s))"
                ) from cause
            logger.info(
                "%s: %s; retry %d/%d in %.2f s", what, last, attempts, policy.retries, delay
            )
            self.sleep(delay)


USER_AGENT = "khook-serverless"
MAX_CONNECTIONS = 32
"""One function instance handles a handful of concurrent requests; more sockets only help a
storm, which Pub/Sub flow control and the dedup claim already shape."""


def new_client(connect_timeout: float) -> httpx.Client:
    """The shared sync client: no redirects (a token must not follow them), keep-alive on,
    ``TCP_NODELAY`` as curl and Go set it (a small JSON body must not wait for an ACK).

    Plain ``http://`` (an in-cluster kagent) needs no TLS context, and loading the CA bundle
    costs 25-45 ms of cold start, so the ``https://`` transport is built on first use.
    """

    def transport(*, verify: bool) -> httpx.HTTPTransport:
        return httpx.HTTPTransport(
            verify=verify,
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=8),
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )

    return httpx.Client(
        transport=transport(verify=False),  # only plain http:// reaches it: nothing to verify
        mounts={"https://": LazyTransport(lambda: transport(verify=True))},
        follow_redirects=False,
        timeout=httpx.Timeout(30.0, connect=connect_timeout),
        headers={"User-Agent": USER_AGENT},
    )


class LazyTransport(httpx.BaseTransport):
    """Builds its transport on the first request (thread-safe)."""

    def __init__(self, factory: Callable[[], httpx.BaseTransport]) -> None:
        self._factory = factory
        self._transport: httpx.BaseTransport | None = None
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._transport is None:
            with self._lock:
                if self._transport is None:
                    self._transport = self._factory()
        return self._transport.handle_request(request)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class HttpDispatcher:
    """What the A2A and webhook dispatchers share: a client (their own, or the routing
    dispatcher's, which they then leave open) and a retrying sender with their read timeout."""

    def __init__(
        self,
        settings: DispatchSettings,
        *,
        read_timeout: float,
        client: httpx.Client | None,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        self._own_client = client is None
        self.client = client or new_client(settings.connect_timeout)
        self.sender = Sender(
            self.client,
            RetryPolicy.from_settings(settings, read_timeout=read_timeout),
            sleep=sleep,
        )
        self.clock = clock
        self._lock = threading.Lock()

    def deadline(self, request: DispatchRequest, what: str) -> Deadline:
        """The time this dispatch may take, every attempt, wait, card read and session included:
        ``KHOOK_DISPATCH_BUDGET``, or ``request.time_budget`` (what is left of the invocation)
        when that is less.

        Raises:
            TransientError: the budget is already spent (less than one attempt's worth), so
                nothing is sent; the claim is released and the event redelivered.
        """
        budget = self.settings.dispatch_budget
        if request.time_budget is not None:
            budget = min(budget, request.time_budget)
        if budget < MIN_ATTEMPT_S:
            raise TransientError(
                f"{what}: not sent, the time budget is spent ({max(budget, 0.0):.2f} s left "
                "of the function invocation or KHOOK_DISPATCH_BUDGET); the event will be "
                "redelivered"
            )
        return Deadline(budget, self.clock)

    def close(self) -> None:
        if self._own_client:
            self.client.close()
