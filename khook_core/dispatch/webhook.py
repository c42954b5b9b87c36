"""Webhook dispatcher: POST a JSON body, rendered from the hook's template, to a URL.

The body template is any JSON value whose strings may hold the prompt placeholders
(``{{.ResourceName}}`` …) and ``{{.Prompt}}``; ``khook_core.bodytemplate`` compiles it when the
hooks load, with ``khook_core.prompt``'s parser, so the placeholder set and its rules are the same
as in prompts. Without a template the body is the project's generic webhook shape. Values are
substituted inside the JSON structure, never into JSON text, so event text cannot break out of
its string; the result is checked to be valid JSON (no NaN, no non-string keys) before it is
sent.

Signing: ``X-Signature-256: sha256=<hex HMAC-SHA256 of the exact body bytes>`` with the key from
the environment variable named by ``hmacSecretEnv``. ``Idempotency-Key`` carries the message id,
which is stable across redeliveries, so retries (429, 5xx, network errors, timeouts) are safe for
a receiver that honours it. Every attempt and wait fits in the dispatch's deadline
(``KHOOK_DISPATCH_BUDGET``, or the invocation's ``time_budget`` when less). Header values
written ``${NAME}`` are read from the environment, so secrets stay out of hook files.

Webhook URLs often embed a secret (Slack's do), so errors name the hook and the host only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import httpx

from khook_core import bodytemplate, escaping, prompt
from khook_core.dispatch.base import DispatchRequest, DispatchResult, redact_url
from khook_core.dispatch.retry import HttpDispatcher, error_text
from khook_core.errors import DispatchError
from khook_core.event import Event
from khook_core.settings import DispatchSettings
from khook_core.timeparse import format_time

SIGNATURE_HEADER: Final = "X-Signature-256"
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
_ENV_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
MAX_TEMPLATE_CACHE = 1024
"""Compiled body templates kept; hooks are a bounded set, this only guards against misuse."""


def render_body(compiled: Any, request: DispatchRequest) -> Any:
    """Fill a compiled template for one request."""
    if isinstance(compiled, tuple):
        return "".join(_segment_value(seg, request) for seg in compiled)
    if isinstance(compiled, dict):
        return {k: render_body(v, request) for k, v in compiled.items()}
    if isinstance(compiled, list):
        return [render_body(v, request) for v in compiled]
    return compiled


def _segment_value(segment: bodytemplate.Segment, request: DispatchRequest) -> str:
    if isinstance(segment, str):
        return segment
    if isinstance(segment, bodytemplate.PromptSlot):
        return request.prompt
    # A notification shows the values themselves (the message too): each stays inside a JSON
    # string, capped, its invisible characters escaped, and is never read as instructions.
    return prompt.field_text(segment, request.event)


def default_body(request: DispatchRequest) -> dict[str, Any]:
    """The project's generic webhook body: the event, the hook and the prompt. Event strings are
    cleaned as a template's placeholders are (``prompt.field_text``)."""
    event: Event = request.event
    namespace, _, name = request.hook.partition("/")
    return {
        "event": {
            "id": _shown(event.id),
            "source": _shown(event.source),
            "type": _shown(event.type),
            "severity": event.severity.value,
            "resource": {
                "kind": _shown(event.resource.kind),
                "namespace": _shown(event.resource.namespace),
                "name": _shown(event.resource.name),
            },
            "reason": _shown(event.reason),
            "message": escaping.clean(
                event.message, prompt.MAX_MESSAGE_CHARS, ascii_only=False, multiline=True
            ),
            "count": event.count,
            "timestamp": format_time(event.timestamp),
        },
        "hook": {"namespace": namespace, "name": name},
        "prompt": request.prompt,
    }


def _shown(text: str) -> str:
    return escaping.clean(text, prompt.MAX_FIELD_CHARS, ascii_only=False)


def sign(key: bytes, body: bytes) -> str:
    """The ``X-Signature-256`` value: ``sha256=<hex>`` (GitHub's scheme)."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


class WebhookDispatcher(HttpDispatcher):
    """POSTs rendered bodies to webhook targets.

    Args:
        settings: timeouts and retries.
        client: an ``httpx.Client`` to share; one is made if None.
        environ: where ``hmacSecretEnv`` and ``${NAME}`` header references are looked up: the
            environment the entry point read (``Settings.environ``); empty if None.
    """

    def __init__(
        self,
        settings: DispatchSettings,
        *,
        client: httpx.Client | None = None,
        environ: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            settings, read_timeout=settings.webhook_timeout, client=client, sleep=sleep, clock=clock
        )
        self.environ: Mapping[str, str] = {} if environ is None else environ
        self._templates: dict[str, Any] = {}

    def dispatch(self, request: DispatchRequest) -> DispatchResult:
        options = request.target.options
        url = str(options.get("url") or request.target.url)
        what = f"webhook {redact_url(url)} of hook {request.hook}"
        deadline = self.deadline(request, what)
        compiled = options.get(bodytemplate.COMPILED_BODY)
        body = self._body(request, compiled or options.get("body"), what)
        headers = self._headers(options, what)
        headers["Content-Type"] = "application/json"
        headers[IDEMPOTENCY_HEADER] = request.message_id
        headers.update(request.trace_headers)
        secret_env = options.get("hmacSecretEnv")
        if secret_env:
            key = self.environ.get(str(secret_env), "")
            if not key:
                raise DispatchError(
                    f"{what}: environment variable {secret_env} "
                    "(hmacSecretEnv) is not set; set it or drop hmacSecretEnv"
                )
            headers[SIGNATURE_HEADER] = sign(key.encode(), body)
        response = self.sender.send(
            "POST",
            url,
            what=what,
            deadline=deadline,
            headers=headers,
            content=body,
            idempotent=True,
        )
        status = response.status_code
        if 200 <= status < 300:
            return DispatchResult(state="delivered", detail=f"HTTP {status}")
        if 300 <= status < 400:
            raise DispatchError(
                f"{what}: HTTP {status} redirect; redirects are not followed, "
                "configure the final URL",
                status=status,
            )
        raise DispatchError(f"{what}: HTTP {status}: {error_text(response)}", status=status)

    def _body(self, request: DispatchRequest, template: Any, what: str) -> bytes:
        if template is None:
            rendered: Any = default_body(request)
        elif isinstance(template, bodytemplate.CompiledBody):
            rendered = render_body(template.value, request)
        else:
            rendered = render_body(self._compiled(template, what), request)
        try:
            return json.dumps(
                rendered, ensure_ascii=False, allow_nan=False, separators=(",", ":")
            ).encode()
        except (TypeError, ValueError) as exc:
            raise DispatchError(
                f"{what}: rendered body is not valid JSON ({exc}); fix the hook's webhook.body"
            ) from exc

    def _compiled(self, template: Any, what: str) -> Any:
        cache_key = json.dumps(template, sort_keys=True, default=repr)
        with self._lock:
            compiled = self._templates.get(cache_key)
        if compiled is None:
            try:
                compiled = bodytemplate.compile_body(template)
            except prompt.TemplateError as exc:
                raise DispatchError(f"{what}: webhook.body: {exc}") from exc
            with self._lock:
                if len(self._templates) >= MAX_TEMPLATE_CACHE:
                    self._templates.clear()
                self._templates[cache_key] = compiled
        return compiled

    def _headers(self, options: Mapping[str, Any], what: str) -> dict[str, str]:
        headers: dict[str, str] = {}
        for name, value in (options.get("headers") or {}).items():
            ref = _ENV_REFERENCE.match(str(value))
            if ref is None:
                headers[str(name)] = str(value)
                continue
            resolved = self.environ.get(ref[1])
            if not resolved:
                raise DispatchError(
                    f"{what}: header {name} refers to environment variable "
                    f"{ref[1]}, which is not set; set it (from a secret)"
                )
            headers[str(name)] = resolved
        return headers
