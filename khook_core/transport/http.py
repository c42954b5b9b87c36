"""Serving a source over HTTP: the checks every HTTP-triggered function makes, in one place.

A request passes these gates in order; the first that fails answers with its status and a JSON
body ``{"error", "status", "field"}`` built from the error's fields:

====  =========================================================================================
405   method other than POST (with ``Allow: POST``)
415   content type other than ``application/json``
413   body over the limit (1 MiB unless the source says otherwise); a declared Content-Length
      is refused without reading, otherwise reading stops one byte past the limit
401   missing or wrong credentials: ``Authorization: Bearer`` compared in constant time, or an
      HMAC-SHA256 signature over the exact body bytes (``sha256=<hex>``), optionally over
      ``<timestamp>.<body>`` with the timestamp inside a replay window
      (Standard Webhooks and PagerDuty v3 signatures: ``khook_core.transport.signatures``)
408   body not received within the body deadline (``khook_core.transport.guard``)
400   body that ``khook_core.jsontext`` refuses: not UTF-8 JSON, NaN, Infinity, a number that
      overflows to them, nesting over its limit, a lone surrogate (``field``: its path)
4xx   whatever ``InvalidEventError`` the source raises (422 for schema violations)
503   a retryable pipeline decision (agent or state store unavailable), with ``Retry-After``:
      a sender that retries (Alertmanager) sends again; GitHub does not retry failed
      deliveries, they are redelivered by hand or through GitHub's REST API
200   a summary of the decisions (never the prompts)
====  =========================================================================================

Secrets come from the environment (Secret Manager injects them there), read with the settings
tree (``Settings.group``) as ``HttpCredentials``: ``KHOOK_<SOURCE>_TOKEN``,
``KHOOK_<SOURCE>_HMAC_SECRET`` and, for
deployments protected elsewhere (Cloud Run IAM), ``KHOOK_<SOURCE>_ALLOW_UNAUTHENTICATED=true``.
Endpoints with ``auth: standard-webhooks`` or ``auth: pagerduty`` read
``KHOOK_<SOURCE>_STANDARD_WEBHOOKS_SECRET`` or ``KHOOK_<SOURCE>_PAGERDUTY_SECRET`` instead.
A source can tune the gates per request path with an ``http_options(path)`` method returning
the ``HttpOptions`` keys; sources never import this module.
"""

import hashlib
import hmac
import json
import logging
import math
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, TypedDict

import flask
from pydantic import SecretStr

from khook_core import jsontext, logs
from khook_core.envsettings import EnvSettings
from khook_core.errors import AuthError, InvalidEventError, TransientError
from khook_core.pipeline import Decision, run_pipeline
from khook_core.transport import describe

if TYPE_CHECKING:
    from khook_core.runtime import Runtime
    from khook_core.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES: Final = 1024 * 1024
"""1 MiB: an Alertmanager group of a few hundred alerts, far more than any single event."""
DEFAULT_REPLAY_WINDOW: Final = timedelta(minutes=5)
"""Slack's and Standard Webhooks' window: covers clock skew and sender retries, not replays."""
READ_CHUNK_BYTES: Final = 64 * 1024
RETRY_AFTER_SECONDS: Final = 30
"""Asked of senders after a transient failure. Alertmanager retries on its own; GitHub does not
retry failed deliveries (they are redelivered by hand or through GitHub's REST API)."""
SIGNATURE_HEADERS: Final = ("x-hub-signature-256", "x-signature-256")
"""GitHub's header and the project's generic one."""
_HIDDEN_HEADERS: Final = frozenset({"authorization", "cookie", "proxy-authorization"})
"""Never handed to sources (they end up in event metadata and logs)."""

AuthScheme = Literal["any", "bearer", "hmac", "standard-webhooks", "pagerduty"]
SENDER_SCHEMES: Final = ("standard-webhooks", "pagerduty")
"""Schemes defined by a sender, each with its own secret (``khook_core.transport.signatures``)."""


class HttpOptions(TypedDict, total=False):
    """What a source's ``http_options(path)`` may return; absent keys keep the defaults."""

    auth: AuthScheme
    max_body_bytes: int
    signature_headers: tuple[str, ...]
    timestamp_header: str | None
    replay_window_seconds: float
    content_types: tuple[str, ...]


@dataclass(frozen=True)
class HttpPolicy:
    """The gates for one request."""

    auth: AuthScheme = "any"
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    methods: frozenset[str] = frozenset({"POST"})
    content_types: tuple[str, ...] = ("application/json",)
    signature_headers: tuple[str, ...] = SIGNATURE_HEADERS
    timestamp_header: str | None = None
    replay_window: timedelta = DEFAULT_REPLAY_WINDOW


def policy_for(plugin: object, path: str) -> HttpPolicy:
    """The default policy, adjusted by the source's ``http_options(path)`` when it has one."""
    options_of = getattr(plugin, "http_options", None)
    if options_of is None:
        return HttpPolicy()
    options: HttpOptions = options_of(path)
    policy = HttpPolicy()
    changes: dict[str, Any] = {}
    for key in ("auth", "max_body_bytes", "timestamp_header", "content_types"):
        if key in options:
            changes[key] = options[key]
    if "signature_headers" in options:
        changes["signature_headers"] = tuple(h.lower() for h in options["signature_headers"])
    if changes.get("timestamp_header"):
        changes["timestamp_header"] = str(changes["timestamp_header"]).lower()
    if "replay_window_seconds" in options:
        changes["replay_window"] = timedelta(seconds=options["replay_window_seconds"])
    return replace(policy, **changes)


# --------------------------------------------------------------------------------------------
# Credentials
# --------------------------------------------------------------------------------------------


def env_prefix(source: str) -> str:
    """``webhook`` → ``KHOOK_WEBHOOK_``; ``my-source`` → ``KHOOK_MY_SOURCE_``."""
    return "KHOOK_" + re.sub(r"[^A-Z0-9]+", "_", source.upper()).strip("_") + "_"


class HttpCredentials(EnvSettings):
    """The secrets of one HTTP source, from ``KHOOK_<SOURCE>_*`` environment variables."""

    env_prefix: ClassVar[str] = ""  # per source, given to Settings.group: see env_prefix()

    token: SecretStr | None = None
    """Expected ``Authorization: Bearer`` token (``KHOOK_<SOURCE>_TOKEN``)."""
    hmac_secret: SecretStr | None = None
    """Key of the HMAC-SHA256 body signature (``KHOOK_<SOURCE>_HMAC_SECRET``)."""
    standard_webhooks_secret: SecretStr | None = None
    """``whsec_<base64>`` key of ``auth: standard-webhooks``
    (``KHOOK_<SOURCE>_STANDARD_WEBHOOKS_SECRET``)."""
    pagerduty_secret: SecretStr | None = None
    """Secret of a PagerDuty v3 webhook subscription (``KHOOK_<SOURCE>_PAGERDUTY_SECRET``)."""
    allow_unauthenticated: bool = False
    """Accept requests without credentials when none are configured; only for deployments whose
    ingress already authenticates (Cloud Run IAM, IAP). Off: no secret means every request is
    refused, so a missing secret can never open the endpoint."""

    def bearer(self) -> str | None:
        return _secret(self.token)

    def signing_key(self) -> str | None:
        return _secret(self.hmac_secret)


def _secret(value: SecretStr | None) -> str | None:
    text = value.get_secret_value() if value is not None else ""
    return text or None


def credentials_for(settings: "Settings", source: str) -> HttpCredentials:
    """Read from the settings' environment once per source (on its first request).

    Raises:
        ConfigError: an invalid ``KHOOK_<SOURCE>_*`` value, named.
    """
    return settings.group(HttpCredentials, prefix=env_prefix(source))


# --------------------------------------------------------------------------------------------
# The gates
# --------------------------------------------------------------------------------------------


def check_method(method: str, policy: HttpPolicy) -> None:
    if method.upper() not in policy.methods:
        raise InvalidEventError(
            f"method {method} is not allowed; use {' or '.join(sorted(policy.methods))}",
            field="method",
            status=405,
        )


def check_content_type(mimetype: str, policy: HttpPolicy) -> None:
    if mimetype.lower() not in policy.content_types:
        raise InvalidEventError(
            f"content type {mimetype or '(none)'!r} is not supported; send "
            f"{' or '.join(policy.content_types)}",
            field="content-type",
            status=415,
        )


def read_body(request: flask.Request, policy: HttpPolicy) -> bytes:
    """The body, reading at most one byte past the limit."""
    limit = policy.max_body_bytes
    declared = request.content_length
    if declared is not None and declared > limit:
        raise _too_large(f"{declared} bytes", limit)
    chunks: list[bytes] = []
    total = 0
    while total <= limit:
        chunk = request.stream.read(min(READ_CHUNK_BYTES, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    if total > limit:
        raise _too_large("more", limit)
    return b"".join(chunks)


def _too_large(size: str, limit: int) -> InvalidEventError:
    return InvalidEventError(
        f"request body of {size} is over the limit of {limit} bytes", field="body", status=413
    )


def authenticate(
    headers: Mapping[str, str],
    body: bytes,
    policy: HttpPolicy,
    credentials: HttpCredentials,
    *,
    now: float,
    source: str = "",
) -> str:
    """Check the credentials this endpoint accepts; returns the scheme that passed.

    Raises:
        AuthError: no credential configured, none sent, or a wrong one (status 401).
    """
    if policy.auth in SENDER_SCHEMES:
        return _sender_signature(headers, body, policy, credentials, now=now, source=source)
    token = credentials.bearer() if policy.auth in ("any", "bearer") else None
    key = credentials.signing_key() if policy.auth in ("any", "hmac") else None
    if token is None and key is None:
        if credentials.allow_unauthenticated:
            return "none"
        logger.error(
            "refusing %s request: no credentials configured (set %sTOKEN or "
            "%sHMAC_SECRET, or %sALLOW_UNAUTHENTICATED=true behind other auth)",
            source,
            *([env_prefix(source)] * 3),
        )
        raise AuthError(
            "this endpoint has no credentials configured; every request is refused",
            field="authorization",
        )
    if key is not None:
        header = next((h for h in policy.signature_headers if headers.get(h)), None)
        if header is not None:
            verify_signature(headers, header, body, key, policy, now=now)
            return "hmac"
    authorization = headers.get("authorization", "")
    if token is not None and authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthError(
                "the Authorization header must be 'Bearer <token>'", field="authorization"
            )
        if not hmac.compare_digest(value.strip().encode(), token.encode()):
            raise AuthError("the bearer token is wrong", field="authorization")
        return "bearer"
    wanted = []
    if token is not None:
        wanted.append("Authorization: Bearer <token>")
    if key is not None:
        wanted.append(f"{policy.signature_headers[0]}: sha256=<hmac of the body>")
    raise AuthError(
        f"missing credentials: send {' or '.join(wanted)}",
        field="authorization" if token is not None else policy.signature_headers[0],
    )


def _sender_signature(
    headers: Mapping[str, str],
    body: bytes,
    policy: HttpPolicy,
    credentials: HttpCredentials,
    *,
    now: float,
    source: str,
) -> str:
    """Standard Webhooks or PagerDuty v3, each checked against its own secret."""
    from khook_core.transport import signatures

    standard = policy.auth == "standard-webhooks"
    setting = "STANDARD_WEBHOOKS_SECRET" if standard else "PAGERDUTY_SECRET"
    secret = _secret(
        credentials.standard_webhooks_secret if standard else credentials.pagerduty_secret
    )
    if secret is None:
        if credentials.allow_unauthenticated:
            return "none"
        logger.error(
            "refusing %s request: auth %s needs %s%s",
            source,
            policy.auth,
            env_prefix(source),
            setting,
        )
        raise AuthError(
            "this endpoint has no credentials configured; every request is refused",
            field="authorization",
        )
    if policy.auth == "pagerduty":
        signatures.verify_pagerduty(headers, body, secret)
        return "pagerduty"
    try:
        key = signatures.standard_webhooks_key(secret)
    except ValueError as exc:
        logger.error("refusing %s request: %s%s: %s", source, env_prefix(source), setting, exc)
        raise AuthError(
            "this endpoint's signing secret is misconfigured; every request is refused",
            field="authorization",
        ) from None
    signatures.verify_standard_webhooks(
        headers, body, key, now=now, window_seconds=policy.replay_window.total_seconds()
    )
    return "standard-webhooks"


def verify_signature(
    headers: Mapping[str, str],
    header: str,
    body: bytes,
    key: str,
    policy: HttpPolicy,
    *,
    now: float,
) -> None:
    """HMAC-SHA256 over the body (or ``<timestamp>.<body>``), compared in constant time."""
    signed = body
    if policy.timestamp_header:
        stamp = headers.get(policy.timestamp_header, "").strip()
        if not stamp:
            raise AuthError(
                f"missing {policy.timestamp_header} header (required with the signature)",
                field=policy.timestamp_header,
            )
        try:
            sent = float(stamp)
        except ValueError:
            sent = math.nan
        if not math.isfinite(sent):
            raise AuthError(
                f"{policy.timestamp_header} must be a Unix time in seconds",
                field=policy.timestamp_header,
            )
        skew = abs(now - sent)
        window = policy.replay_window.total_seconds()
        if skew > window:
            raise AuthError(
                f"{policy.timestamp_header} is {skew:.0f} s away from now, outside "
                f"the replay window of {window:.0f} s",
                field=policy.timestamp_header,
            )
        signed = stamp.encode() + b"." + body
    given = headers.get(header, "").strip()
    if given[:7].lower() == "sha256=":
        given = given[7:]
    expected = hmac.new(key.encode(), signed, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), given.strip().lower().encode("utf-8", "replace")):
        raise AuthError(f"{header}: the signature does not match the body", field=header)


def parse_json(body: bytes) -> Any:
    """Strict JSON (``khook_core.jsontext``): UTF-8, finite numbers, bounded nesting, valid
    Unicode text."""
    if not body.strip():
        raise InvalidEventError("the request body is empty; send a JSON document", field="body")
    return jsontext.loads(body, field="body")


# --------------------------------------------------------------------------------------------
# Serving
# --------------------------------------------------------------------------------------------


def request_id_of(headers: Mapping[str, str]) -> str:
    """Cloud Run's execution id, the trace id, the sender's id, or a new one."""
    for name in ("function-execution-id", "x-request-id", "x-github-delivery"):
        if headers.get(name):
            return headers[name][:128]
    trace = headers.get("x-cloud-trace-context", "").split("/", 1)[0]
    return trace[:128] or uuid.uuid4().hex[:16]


def serve(
    request: flask.Request,
    source: str,
    *,
    runtime: "Runtime | None" = None,
    clock: Callable[[], float] = time.time,
) -> flask.Response:
    """Answer one HTTP delivery for ``source`` (see the module docstring for the statuses).

    Example::

        @functions_framework.http
        def handle(request: flask.Request) -> flask.Response:
            return http.serve(request, "alertmanager")
    """
    started = time.monotonic()
    headers = {k.lower(): v for k, v in request.headers.items()}
    request_id = request_id_of(headers)
    with logs.bind(source=source, request_id=request_id):
        try:
            if runtime is None:
                from khook_core.liveconfig.reload import current_runtime

                runtime = current_runtime(source)  # the live configuration
            policy = policy_for(runtime.config.sources.get(source), request.path)
            check_method(request.method, policy)
            check_content_type(request.mimetype, policy)
            body = read_body(request, policy)
            scheme = authenticate(
                headers,
                body,
                policy,
                credentials_for(runtime.settings, source),
                now=clock(),
                source=source,
            )
            payload = parse_json(body)
            attributes = {k: v for k, v in headers.items() if k not in _HIDDEN_HEADERS}
            attributes |= {
                "http.path": request.path,
                "http.method": request.method,
                "http.request_id": request_id,
                "http.auth": scheme,
            }
            # A sender's ``traceparent`` header is this span's parent.
            with runtime.telemetry.span(
                f"receive {source}",
                parent=headers,
                kind="server",
                attributes={"khook.source": source},
            ):
                decisions = run_pipeline(
                    source,
                    payload,
                    attributes,
                    runtime=runtime,
                    deadline=started + runtime.settings.invocation_budget,
                )
        except InvalidEventError as exc:
            logger.warning(
                "refused %s request %s: %d %s",
                source,
                request_id,
                exc.status,
                exc.message,
                extra={"error": exc.to_json()},
            )
            return error_response(exc)
        except TransientError as exc:
            logger.warning("transient failure on %s request %s: %s", source, request_id, exc)
            return _json(
                {"error": f"temporary failure, retry later: {exc}", "status": 503},
                503,
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        return summary_response(source, request_id, decisions)


def error_response(exc: InvalidEventError) -> flask.Response:
    extra: dict[str, str] = {}
    if exc.status == 405:
        extra["Allow"] = "POST"
    elif exc.status == 401:
        extra["WWW-Authenticate"] = 'Bearer realm="khook"'
    return _json(exc.to_json(), exc.status, extra)


def summary_response(source: str, request_id: str, decisions: list[Decision]) -> flask.Response:
    """200 with what happened to each event, or 503 when a decision asks for a retry."""
    counts = Counter(d.decision for d in decisions)
    items = []
    for d, text in zip(decisions, describe.decision_texts(decisions), strict=True):
        logger.info("%s request %s: %s", source, request_id, text)
        item: dict[str, Any] = {"decision": d.decision}
        if d.event is not None:
            item |= {
                "event": d.event.id,
                "type": d.event.type,
                "status": d.event.status,
                "resource": d.event.resource.ref(),
            }
        if d.hook:
            item["hook"] = d.hook
        if d.task_id:
            item["task_id"] = d.task_id
        if d.detail:
            item["detail"] = d.detail
        items.append(item)
    body: dict[str, Any] = {
        "source": source,
        "request_id": request_id,
        "counts": dict(sorted(counts.items())),
        "decisions": items,
    }
    if any(d.retryable for d in decisions):
        body |= {"error": "temporary failure, retry later", "status": 503}
        return _json(body, 503, {"Retry-After": str(RETRY_AFTER_SECONDS)})
    return _json(body, 200)


def _json(
    body: Mapping[str, Any],
    status: int,
    headers: Mapping[str, str] | None = None,
) -> flask.Response:
    return flask.Response(
        json.dumps(body, ensure_ascii=False, default=str),
        status=status,
        mimetype="application/json",
        headers=dict(headers or {}),
    )
