"""A2A dispatcher: kagent agents (``agentRef``) and any A2A agent (``agentUrl``), thin httpx.

One non-blocking ``message/send`` (A2A 0.3) or ``SendMessage`` (A2A 1.0, header
``A2A-Version: 1.0``), answered as soon as the agent has created the task, so a function never
waits for an agent run (R15). What khook got wrong and this module does instead:

- ``messageId`` is the pipeline's id derived from the dedup key, ``kind: "message"`` is set, and
  ``contextId`` is the pipeline's context id, which kagent turns into a session (R12, R16);
- ``X-User-Id`` goes on every call, the same user as any session call (R13);
- both wires, chosen per agent from its card; only when the card does not tell, a recognisable
  version or method mismatch is answered by trying the other wire once (R14). Any other refusal,
  a plain HTTP 400 included, is final after one POST and reported with the agent's text;
- a bearer token and extra headers from the settings (``KHOOK_A2A_TOKEN``, ``KHOOK_A2A_HEADERS``,
  R17);
- bounded retries within the dispatch's deadline (``retry.py``): ``KHOOK_DISPATCH_BUDGET``, or
  what is left of the function invocation when less, card read and session included; errors
  that name the agent;
- a send whose answer never came is not repeated blindly: its retry (``request.verify``) first
  asks the agent whether the message arrived (``lookup.py``) and sends only when it did not, or
  when the agent cannot tell (``recovered="unverified"``).

The card is read only for its protocol version: kagent rewrites the card's URLs to in-cluster
addresses, so they are never followed. The a2a-sdk is a test dependency only (about 250 ms
import against httpx's 90 ms).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import quote

import httpx

from khook_core import escaping
from khook_core.dispatch import lookup
from khook_core.dispatch.base import HITL_URI, DispatchRequest, DispatchResult, Recovered, Target
from khook_core.dispatch.retry import MIN_ATTEMPT_S, Deadline, HttpDispatcher, error_text
from khook_core.errors import DispatchError, OutcomeUnknownError, TransientError
from khook_core.settings import DispatchSettings

logger = logging.getLogger(__name__)

WIRE_0_3: Final = "0.3"
WIRE_1_0: Final = "1.0"
WIRES: Final = (WIRE_1_0, WIRE_0_3)
"""Order tried when the card does not tell: 1.0 first, the protocol kagent main speaks alone."""
VERSION_ERROR_CODES: Final = frozenset({-32009, -32601})
"""JSON-RPC "version not supported" (a2a-sdk 1.x answers a 1.0 method sent as 0.3 with it) and
"method not found" (a 0.3-only server asked for ``SendMessage``): the other wire may work."""
VERSION_MISMATCH_TEXT: Final = re.compile(
    r"\bversion\b[^;\n]{0,60}\bnot supported\b"
    r"|\bunsupported\b[^;\n]{0,60}\bversion\b"
    r"|\bversion_not_supported\b"
    r"|\ba2a-version\b",
    re.IGNORECASE,
)
"""An error text that is about the protocol version, whatever its code or HTTP status:
a2a-sdk's "A2A version '1.0' is not supported by this handler" (which its 0.3 compat adapter
sends as -32603), a2a-go's "… is not supported; this interface speaks 1.0", and kagent's
plain-text HTTP 400 to an ``A2A-Version`` it does not serve (wording unverified, so matched
loosely). Anything else, "invalid message: parts must not be empty" say, is not a wire problem."""
CARD_PATHS: Final = (".well-known/agent-card.json", ".well-known/agent.json")
"""Current card location, then the one servers before A2A 0.3 used."""
CARD_TIMEOUT_S = 5.0
"""A card read is a hint; a slow one must not eat the send's budget."""
CARD_SHARE = 0.5
"""A card read may take at most this share of what is left of the deadline (and never more than
``CARD_TIMEOUT_S``), so a short invocation budget still leaves the send its time."""
DETAIL_MAX_CHARS = 300


class _WrongWire(DispatchError):
    """The agent answered that it does not speak the wire just used (a version or method
    mismatch, recognised by code or text); any other refusal is a plain ``DispatchError``."""


class A2ADispatcher(HttpDispatcher):
    """Sends prompts to A2A agents.

    Args:
        settings: where kagent is, who we are, timeouts, retries, wire selection.
        client: an ``httpx.Client`` to share (the routing dispatcher's); one is made if None.
        sleep, clock: injectable for tests.

    Example::

        dispatcher = A2ADispatcher(Settings.from_env().dispatchers)
        result = dispatcher.dispatch(request)   # DispatchResult(task_id=..., state="submitted")
    """

    def __init__(
        self,
        settings: DispatchSettings,
        *,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            settings,
            read_timeout=settings.kagent_api_timeout,
            client=client,
            sleep=sleep,
            clock=clock,
        )
        # endpoint → the wire that last worked or the card's; "" = card read, says nothing.
        self._wires: dict[str, str] = {}
        # endpoint → whether its card advertises push notifications (once the card was read).
        self._push: dict[str, bool] = {}

    # -- public -------------------------------------------------------------------------------

    def endpoint(self, target: Target) -> str:
        """kagent: ``{KAGENT_API_URL}/api/a2a/{namespace}/{name}/`` (trailing slash required)."""
        if target.kind == "agent":
            return (
                f"{self.settings.kagent_api_url}/api/a2a/"
                f"{quote(target.namespace, safe='')}/{quote(target.name, safe='')}/"
            )
        if target.kind == "a2a" and target.url:
            return target.url
        raise DispatchError(f"target {target.label() or target.kind!r} is not an A2A agent")

    def dispatch(self, request: DispatchRequest) -> DispatchResult:
        """Send ``request.prompt``; raises ``DispatchError`` (refused) or ``TransientError``.

        Everything (card read, session, every attempt and wait) fits in one deadline: the
        smaller of ``KHOOK_DISPATCH_BUDGET`` and ``request.time_budget``. A budget already spent
        raises ``TransientError`` before anything is sent.
        """
        target = request.target
        url = self.endpoint(target)
        what = f"agent {target.label()} at {url}" if target.kind == "agent" else f"agent {url}"
        deadline = self.deadline(request, what)
        headers = {**self.headers(), **request.trace_headers}
        recovered: Recovered = ""
        if request.verify:
            found = self._verify(request, url, what, headers, deadline)
            if isinstance(found, DispatchResult):
                return found
            recovered = found
        context_id = request.context_id
        if self.settings.kagent_sessions and target.kind == "agent":
            context_id = self.create_session(request, headers, deadline)
        wires, known = self._candidates(url, headers, deadline)
        push = bool(request.push_url) and self._push_supported(url, headers, deadline)
        failures: list[str] = []
        for index, wire in enumerate(wires):
            response = self.sender.send(
                "POST",
                url,
                what=what,
                deadline=deadline,
                idempotent=False,
                headers={**headers, "A2A-Version": wire, "A2A-Extensions": HITL_URI},
                content=_encode(
                    build_payload(
                        wire, request, context_id, push_to(request, url) if push else None
                    )
                ),
            )
            try:
                result = interpret(response, wire, what)
            except _WrongWire as exc:
                failures.append(f"A2A {wire}: {exc}")
                if index + 1 < len(wires):
                    logger.info(
                        "%s does not accept A2A %s (%s); trying %s",
                        what,
                        wire,
                        exc,
                        wires[index + 1],
                    )
                    continue
                raise DispatchError(
                    f"{what} refused the message: {'; '.join(failures)}"
                    f"{self._wrong_wire_hint(url, wire, known)}",
                    status=response.status_code,
                ) from exc
            with self._lock:
                self._wires[url] = wire
            return dataclasses.replace(
                result, recovered=recovered, endpoint=url, wire=wire, push=push
            )
        raise AssertionError("unreachable: at least one wire is always tried")

    def _verify(
        self,
        request: DispatchRequest,
        url: str,
        what: str,
        headers: Mapping[str, str],
        deadline: Deadline,
    ) -> DispatchResult | Recovered:
        """Before sending a message an earlier attempt may have delivered: the agent's task
        for it (``recovered="found"``: nothing is sent), or how the send that follows is to be
        recorded: ``sent`` (the agent listed the context and has no task for the message) or
        ``unverified`` (it could not tell).

        kagent's answer that it has no task is not taken as proof: its ``ListTasks`` reads the
        controller's database, which its agent runtime no longer writes.

        Raises:
            OutcomeUnknownError: the agent could not be asked (the claim stays uncertain).
        """
        target = request.target
        if self.settings.kagent_sessions and target.kind == "agent":
            logger.warning(
                "%s: the earlier send of %s cannot be looked up (each send opens its "
                "own kagent session); sending again",
                what,
                request.message_id,
            )
            return "unverified"
        try:
            found = lookup.find_message(
                self.sender,
                url,
                what=what,
                headers=headers,
                deadline=deadline,
                context_id=request.context_id,
                message_id=request.message_id,
            )
        except TransientError as exc:
            raise OutcomeUnknownError(
                f"{what}: could not ask whether an earlier send of {request.message_id} "
                f"arrived: {exc}"
            ) from exc
        if found.task is not None:
            result = dataclasses.replace(
                parse_result({"task": found.task}, what), endpoint=url, wire=WIRE_1_0
            )
            logger.info(
                "%s already has task %s for %s; not sent again",
                what,
                result.task_id,
                request.message_id,
            )
            return dataclasses.replace(result, recovered="found")
        if found.verdict == "none" and target.kind != "agent":
            return "sent"
        logger.warning(
            "%s cannot tell whether an earlier send of %s arrived (%s); sending again",
            what,
            request.message_id,
            found.reason or "kagent lists no task",
        )
        return "unverified"

    def headers(self) -> dict[str, str]:
        """Headers of every A2A call: identity (R13), then configured extras, then the token."""
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "X-User-Id": self.settings.kagent_user_id,
            **self.settings.a2a_headers,
        }
        if self.settings.a2a_token is not None:
            headers["Authorization"] = f"Bearer {self.settings.a2a_token.get_secret_value()}"
        return headers

    def create_session(
        self, request: DispatchRequest, headers: Mapping[str, str], deadline: Deadline
    ) -> str:
        """kagent ≤ v0.10 REST session (khook's step 1); its id becomes the contextId.

        Retried like a send even after a read timeout: a spare empty session runs nothing.
        """
        target = request.target
        url = httpx.URL(
            f"{self.settings.kagent_api_url}/api/sessions",
            params={"user_id": self.settings.kagent_user_id},
        )
        body = {
            "agent_ref": f"{target.namespace}/{target.name}",
            "name": f"hook-{request.event.type}-{int(request.event.timestamp.timestamp())}",
        }
        session_headers = {k: v for k, v in headers.items() if k.lower() != "x-user-id"}
        session_headers["X-User-ID"] = self.settings.kagent_user_id
        what = f"kagent sessions API at {url.copy_with(query=None)} for {target.label()}"
        response = self.sender.send(
            "POST",
            str(url),
            what=what,
            deadline=deadline,
            headers=session_headers,
            content=_encode(body),
            idempotent=True,
        )
        status = response.status_code
        if status == 404:
            raise DispatchError(
                f"{what}: HTTP 404 ({error_text(response)}); this kagent has no "
                "sessions API (removed after v0.10): unset KHOOK_KAGENT_SESSIONS",
                status=status,
            )
        if not 200 <= status < 300:
            raise DispatchError(f"{what}: HTTP {status}: {error_text(response)}", status=status)
        try:
            payload = response.json()
            if payload.get("error"):
                raise DispatchError(f"{what}: {payload.get('message') or 'error'}", status=status)
            session_id = str(payload["data"]["id"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DispatchError(
                f"{what}: unexpected answer {error_text(response)}", status=status
            ) from exc
        if not session_id:
            raise DispatchError(f"{what}: answer has an empty session id", status=status)
        return session_id

    # -- wire selection -----------------------------------------------------------------------

    def _candidates(
        self, url: str, headers: Mapping[str, str], deadline: Deadline
    ) -> tuple[list[str], bool]:
        """Wires to try, in order, and whether the wire is known (pinned, from the card, or the
        one that last worked). A known wire is the only candidate: its refusal is final. Only
        an unknown wire gets a second try on the other one (1.0 first)."""
        pinned = self.settings.a2a_version
        if pinned != "auto":
            return [pinned], True
        with self._lock:
            known = self._wires.get(url)
        if known is None:
            known = self._read_card(url, headers, deadline)
            if known is not None:
                with self._lock:
                    known = self._wires.setdefault(url, known)
        if known:
            return [known], True
        return list(WIRES), False

    def _wrong_wire_hint(self, url: str, wire: str, known: bool) -> str:
        """What to do about a version refusal of the last wire tried, and forget a remembered
        wire so the next dispatch reads the card again (the agent may have been upgraded)."""
        pinned = self.settings.a2a_version
        if pinned != "auto":
            return f"; KHOOK_A2A_VERSION={pinned} is pinned, try auto"
        if not known:
            return ""
        with self._lock:
            self._wires.pop(url, None)
        return (
            f"; A2A {wire} was known for this agent (from its card, or the wire that last "
            "worked), so the other wire was not tried; the card is read again on the next dispatch"
        )

    def _read_card(self, url: str, headers: Mapping[str, str], deadline: Deadline) -> str | None:
        """The card's preferred wire, "" if the agent answered without saying, None if the card
        could not be read (not remembered: the next dispatch tries again)."""
        base = url if url.endswith("/") else url + "/"
        card_headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        for path in CARD_PATHS:
            budget = min(CARD_TIMEOUT_S, deadline.remaining() * CARD_SHARE)
            if budget < MIN_ATTEMPT_S:
                return None
            try:
                response = self.client.get(
                    base + path, headers=card_headers, timeout=httpx.Timeout(budget)
                )
            except httpx.HTTPError as exc:
                logger.debug("agent card %s%s unreadable: %s", base, path, exc)
                return None
            if response.status_code == 404:
                continue
            if response.status_code != 200:
                return None
            try:
                card = response.json()
            except ValueError:
                return ""
            with self._lock:
                self._push[url] = card_push(card)
            return card_wire(card)
        return ""

    def _push_supported(self, url: str, headers: Mapping[str, str], deadline: Deadline) -> bool:
        """Whether the agent's card advertises push notifications (the card is read once)."""
        with self._lock:
            known = self._push.get(url)
        if known is None:
            self._read_card(url, headers, deadline)
            with self._lock:
                known = self._push.get(url, False)
        return known


def card_push(card: Any) -> bool:
    """Whether an agent card (either wire) advertises ``capabilities.pushNotifications``."""
    capabilities = card.get("capabilities") if isinstance(card, dict) else None
    return isinstance(capabilities, dict) and capabilities.get("pushNotifications") is True


def push_to(request: DispatchRequest, endpoint: str) -> dict[str, str]:
    """The push-notification configuration of one task: our receiver's URL, naming the agent's
    endpoint (so the receiver finds the task), and the task's token."""
    agent = base64.urlsafe_b64encode(endpoint.encode()).decode().rstrip("=")
    joiner = "&" if "?" in request.push_url else "?"
    return {"url": f"{request.push_url}{joiner}agent={agent}", "token": request.push_token}


def card_wire(card: Any) -> str:
    """The wire an agent card prefers: 1.0 if any JSON-RPC interface offers it, else 0.3 if the
    card is a 0.3 card (top-level ``protocolVersion``), else "" (unknown)."""
    if not isinstance(card, dict):
        return ""
    versions: set[str] = set()
    for iface in card.get("supportedInterfaces") or []:
        if isinstance(iface, dict) and str(iface.get("protocolBinding", "JSONRPC")).upper() == (
            "JSONRPC"
        ):
            versions.add(_major_minor(str(iface.get("protocolVersion", ""))))
    if card.get("protocolVersion"):
        versions.add(_major_minor(str(card["protocolVersion"])))
    if WIRE_1_0 in versions:
        return WIRE_1_0
    return WIRE_0_3 if WIRE_0_3 in versions else ""


def _major_minor(version: str) -> str:
    if version.startswith("1."):
        return WIRE_1_0
    if version.startswith("0.3"):
        return WIRE_0_3
    return version


# -- payloads and answers ---------------------------------------------------------------------


def metadata(request: DispatchRequest) -> dict[str, str]:
    """What the agent (and kagent's UI) can see about the firing besides the prompt. Each value
    is cleaned and capped as a prompt's quoted values are (``escaping.clean``): event text, such
    as the resource's name, reaches the agent here too."""
    event = request.event
    values = {
        "khook.hook": request.hook,
        "khook.eventId": event.id,
        "khook.eventType": event.type,
        "khook.source": event.source,
        "khook.severity": event.severity.value,
        "khook.resource": event.resource.ref(),
    }
    return {key: escaping.clean(value, escaping.MAX_VALUE_CHARS) for key, value in values.items()}


def build_payload(
    wire: str,
    request: DispatchRequest,
    context_id: str,
    push: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The JSON-RPC request for ``wire`` (A2A 0.3 / 1.0), with ``push`` (``push_to``) as the
    task's push-notification configuration when given."""
    if wire == WIRE_1_0:
        message: dict[str, Any] = {
            "role": "ROLE_USER",
            "messageId": request.message_id,
            "contextId": context_id,
            "parts": [{"text": request.prompt}],
            "metadata": metadata(request),
        }
        configuration: dict[str, Any] = {"returnImmediately": True}
        if push:
            configuration["taskPushNotificationConfig"] = push
        return {
            "jsonrpc": "2.0",
            "id": request.message_id,
            "method": "SendMessage",
            "params": {"message": message, "configuration": configuration},
        }
    message = {
        "kind": "message",
        "role": "user",
        "messageId": request.message_id,
        "contextId": context_id,
        "parts": [{"kind": "text", "text": request.prompt}],
        "metadata": metadata(request),
    }
    configuration = {"blocking": False}
    if push:
        configuration["pushNotificationConfig"] = push
    return {
        "jsonrpc": "2.0",
        "id": request.message_id,
        "method": "message/send",
        "params": {"message": message, "configuration": configuration},
    }


def interpret(response: httpx.Response, wire: str, what: str) -> DispatchResult:
    """Turn the agent's answer into a result, or raise ``DispatchError`` naming why."""
    status = response.status_code
    if status == 400:
        # kagent answers an A2A-Version it does not serve with a plain-text 400; any other 400
        # (a bad message, a proxy's refusal) is the agent's final word on this request.
        text = error_text(response)
        if version_mismatch(response):
            raise _WrongWire(f"HTTP 400: {text}", status=status)
        raise DispatchError(f"{what}: HTTP 400: {text}", status=status)
    if status == 404:
        raise DispatchError(
            f"{what}: HTTP 404 ({error_text(response)}); check the hook's "
            "agentRef/agentUrl and KAGENT_API_URL",
            status=status,
        )
    if status in (401, 403):
        raise DispatchError(
            f"{what}: HTTP {status} ({error_text(response)}); set "
            "KHOOK_A2A_TOKEN or KHOOK_A2A_HEADERS",
            status=status,
        )
    if 300 <= status < 400:
        raise DispatchError(
            f"{what}: HTTP {status} redirect to "
            f"{response.headers.get('location', '?')}; redirects are not "
            "followed, configure the final URL",
            status=status,
        )
    if not 200 <= status < 300:
        raise DispatchError(f"{what}: HTTP {status}: {error_text(response)}", status=status)
    try:
        payload = response.json()
    except ValueError as exc:
        raise DispatchError(
            f"{what}: answer is not JSON (HTTP {status}): {error_text(response)}", status=status
        ) from exc
    if not isinstance(payload, dict):
        raise DispatchError(
            f"{what}: answer is not a JSON-RPC object: {error_text(response)}", status=status
        )
    error = payload.get("error")
    if error is not None:
        code = error.get("code") if isinstance(error, dict) else None
        text = error.get("message", "") if isinstance(error, dict) else str(error)
        if code in VERSION_ERROR_CODES or VERSION_MISMATCH_TEXT.search(str(text)):
            raise _WrongWire(f"JSON-RPC error {code} (version or method): {text}", status=status)
        raise DispatchError(
            f"{what} refused the message: JSON-RPC error {code}: {text}", status=status
        )
    return parse_result(payload.get("result"), what)


def version_mismatch(response: httpx.Response) -> bool:
    """Whether a refusal says "wrong protocol version or method": a JSON-RPC error whose code is
    in ``VERSION_ERROR_CODES``, or any body whose text matches ``VERSION_MISMATCH_TEXT``."""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict) and error.get("code") in VERSION_ERROR_CODES:
        return True
    return VERSION_MISMATCH_TEXT.search(error_text(response)) is not None


def parse_result(result: Any, what: str) -> DispatchResult:
    """Task id and normalised state from either wire's result (Task or Message)."""
    task: dict[str, Any] | None = None
    message: dict[str, Any] | None = None
    if isinstance(result, dict):
        if isinstance(result.get("task"), dict):  # 1.0: oneof wrapper
            task = result["task"]
        elif isinstance(result.get("message"), dict):
            message = result["message"]
        elif result.get("kind") == "message":  # 0.3: discriminated by kind
            message = result
        elif result.get("kind") == "task" or "status" in result:
            task = result
    if task is not None:
        status = task.get("status") if isinstance(task.get("status"), dict) else {}
        assert isinstance(status, dict)
        state = normalise_state(str(status.get("state", "")))
        detail = _text_of(status.get("message"))
        task_id = str(task.get("id", ""))
        if state == "rejected":
            raise DispatchError(
                f"{what} rejected the message (task {task_id}): {detail or 'no reason given'}"
            )
        return DispatchResult(task_id=task_id, state=state, detail=detail)
    if message is not None:
        return DispatchResult(
            task_id=str(message.get("taskId", "")), state="message", detail=_text_of(message)
        )
    raise DispatchError(
        f"{what}: answer has neither a task nor a message: {json.dumps(result)[:DETAIL_MAX_CHARS]}"
    )


def normalise_state(state: str) -> str:
    """``TASK_STATE_INPUT_REQUIRED`` (1.0) and ``input-required`` (0.3) → ``input-required``."""
    return state.removeprefix("TASK_STATE_").lower().replace("_", "-")


def _text_of(message: Any) -> str:
    if not isinstance(message, dict):
        return ""
    texts = [str(p.get("text", "")) for p in message.get("parts") or [] if isinstance(p, dict)]
    text = " ".join(" ".join(texts).split())
    return text[:DETAIL_MAX_CHARS]


def _encode(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
