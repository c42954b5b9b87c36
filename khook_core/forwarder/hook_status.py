"""Each Hook's ``status`` as khook shows it, plus the ``Ready`` condition khook only documents.

What a Hook did is read from the audit trail (``AuditQueries``: every firing with its hook,
event type, resource, agent, task id and outcome), which every function writes to the shared
store the forwarder already publishes the configuration to; what became of the Hook itself is
the publisher's verdict. From those two ``render`` builds the status:

- ``activeEvents``: one entry per event type and resource the Hook sent (or tried to send) to its
  agent, as khook's dedup records: ``firstSeen`` is the first firing and is never reset while
  the entry is listed, ``lastSeen`` the latest; ``firing`` for ``EVENT_TIMEOUT`` (10 minutes,
  khook's constant) after the latest firing, then ``resolved`` until ``RETENTION`` (khook's
  cleanup tick removes resolved records within 5 more minutes; here exactly at 15), then gone.
  Newest first, so ``activeEvents[0].lastSeen`` is the LAST FIRED column.
- ``conditions``: ``Ready`` True (``HookConfigured``), False (``InvalidConfiguration``, every
  problem with its field) or False (``AgentUnreachable``: the Hook's latest agent call could not
  reach the agent; the next successful call clears it).
- ``lastUpdated``: when the forwarder last wrote the status.

A status is written only when it differs from what the Hook holds (not on a tick), through the
status subresource as a merge patch carrying the ``resourceVersion`` just read: a Hook changed
in between answers 409, and the write starts again from a fresh GET, never from a stale object.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from khook_core.decisions import DecisionKind
from khook_core.errors import Problem
from khook_core.state.base import Firing

logger = logging.getLogger(__name__)

GROUP: Final = "kagent.dev"
VERSION: Final = "v1alpha2"
PLURAL: Final = "hooks"
EVENT_TIMEOUT: Final = timedelta(minutes=10)
"""khook's event timeout: an entry is ``firing`` this long after its latest firing."""
RETENTION: Final = timedelta(minutes=15)
"""khook's timeout plus its cleanup tick: a ``resolved`` entry is dropped after this."""
AGENT_CALLS: Final = frozenset(
    {
        DecisionKind.DISPATCHED.value,
        DecisionKind.FAILED_TRANSIENT.value,
        DecisionKind.FAILED_UNCERTAIN.value,
        DecisionKind.FAILED_REJECTED.value,
    }
)
"""Outcomes of a firing that went to the agent (khook records an event before the call, so a
failed call is an active event too)."""
UNREACHABLE: Final = frozenset(
    {DecisionKind.FAILED_TRANSIENT.value, DecisionKind.FAILED_CIRCUIT_OPEN.value}
)
"""Outcomes meaning the agent could not be reached (``AgentUnreachable``)."""
MERGE_PATCH: Final = "application/merge-patch+json"
HTTP_NOT_FOUND: Final = 404
HTTP_CONFLICT: Final = 409
WRITE_ATTEMPTS: Final = 5
MESSAGE_LIMIT: Final = 1024


def rfc3339(moment: datetime) -> str:
    """Whole seconds in UTC, as the API server stores a ``date-time`` it serialises itself."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def resource_name(resource: str) -> str:
    """``namespace/kind/name`` (the audit's form) → ``name`` (khook's ``resourceName``)."""
    return resource.rsplit("/", 1)[-1]


@dataclass
class ActiveEvent:
    """One event type on one resource, as khook's dedup record of it."""

    event_type: str
    resource: str
    first_seen: datetime
    last_seen: datetime


@dataclass
class HookActivity:
    """What the audit trail says one Hook did within ``RETENTION``."""

    events: dict[tuple[str, str], ActiveEvent] = field(default_factory=dict)
    last_call: Firing | None = None
    """The newest firing that went to the agent or found it unreachable."""

    def fold(self, firing: Firing) -> None:
        """Take one audit record in (any order, any number of times: the result is the same)."""
        if firing.outcome in AGENT_CALLS:
            key = (firing.event_type, firing.resource)
            at = firing.at.replace(microsecond=0)
            known = self.events.get(key)
            if known is None:
                self.events[key] = ActiveEvent(firing.event_type, firing.resource, at, at)
            else:
                known.first_seen = min(known.first_seen, at)
                known.last_seen = max(known.last_seen, at)
        if firing.outcome in AGENT_CALLS | UNREACHABLE and (
            self.last_call is None or firing.at >= self.last_call.at
        ):
            self.last_call = firing

    def seed(self, status: Mapping[str, Any], now: datetime) -> None:
        """Carry ``firstSeen`` over from the status the Hook already holds (after a restart)."""
        for item in status.get("activeEvents") or []:
            if not isinstance(item, dict):
                continue
            first, last = parse_time(item.get("firstSeen")), parse_time(item.get("lastSeen"))
            if first is None or last is None or now - last >= RETENTION:
                continue
            for key, known in self.events.items():
                if key[0] == item.get("eventType") and (
                    resource_name(known.resource) == item.get("resourceName")
                ):
                    known.first_seen = min(known.first_seen, first)

    def prune(self, now: datetime) -> None:
        for key in [k for k, e in self.events.items() if now - e.last_seen >= RETENTION]:
            del self.events[key]
        if self.last_call is not None and now - self.last_call.at >= RETENTION:
            self.last_call = None


def active_events(activity: HookActivity, now: datetime) -> list[dict[str, str]]:
    """khook's ``activeEvents``, newest ``lastSeen`` first (ties by type and name)."""
    live = [e for e in activity.events.values() if now - e.last_seen < RETENTION]
    live.sort(key=lambda e: (-e.last_seen.timestamp(), e.event_type, e.resource))
    return [
        {
            "eventType": e.event_type,
            "resourceName": resource_name(e.resource),
            "firstSeen": rfc3339(e.first_seen),
            "lastSeen": rfc3339(e.last_seen),
            "status": "firing" if now - e.last_seen < EVENT_TIMEOUT else "resolved",
        }
        for e in live
    ]


@dataclass(frozen=True)
class Verdict:
    """The publisher's judgement of one Hook: accepted, or rejected with its problems."""

    problems: tuple[Problem, ...] = ()


def ready_condition(
    verdict: Verdict, activity: HookActivity, obj: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """The ``Ready`` condition (metav1.Condition); its transition time moves only on a change."""
    if verdict.problems:
        status, reason = "False", "InvalidConfiguration"
        message = "; ".join(p.message for p in verdict.problems)
    elif activity.last_call is not None and activity.last_call.outcome in UNREACHABLE:
        call = activity.last_call
        status, reason = "False", "AgentUnreachable"
        message = f"agent {call.agent} unreachable at {rfc3339(call.at)}"
        if call.error:
            message += f": {call.error}"
    else:
        status, reason = "True", "HookConfigured"
        message = "valid and part of the live configuration"
    if len(message) > MESSAGE_LIMIT:
        message = message[: MESSAGE_LIMIT - 1] + "…"
    previous = next(
        (
            c
            for c in (obj.get("status") or {}).get("conditions") or []
            if isinstance(c, dict) and c.get("type") == "Ready"
        ),
        None,
    )
    since = rfc3339(now)
    unchanged = previous is not None and previous.get("status") == status
    if unchanged and previous is not None and previous.get("lastTransitionTime"):
        since = str(previous["lastTransitionTime"])
    return {
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": int((obj.get("metadata") or {}).get("generation") or 0),
        "lastTransitionTime": since,
    }


def render(
    verdict: Verdict, activity: HookActivity, obj: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """The whole status for ``obj`` (``activeEvents`` omitted when empty, as khook does)."""
    status: dict[str, Any] = {
        "conditions": [ready_condition(verdict, activity, obj, now)],
        "lastUpdated": rfc3339(now),
    }
    events = active_events(activity, now)
    if events:
        status["activeEvents"] = events
    return status


def same_status(current: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> bool:
    """Equal but for ``lastUpdated`` (which alone never justifies a write)."""
    current = current or {}
    keys = ("activeEvents", "conditions")
    return all((current.get(k) or None) == (desired.get(k) or None) for k in keys)


class StatusWriter:
    """Writes a Hook's status: fresh GET, render, patch with that resourceVersion, 409 → again."""

    def __init__(self, custom: client.CustomObjectsApi, *, attempts: int = WRITE_ATTEMPTS) -> None:
        self.custom = custom
        self.attempts = attempts
        self.conflicts = 0
        self.writes = 0

    def read(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Hook as stored now; None when it is gone."""
        try:
            response: Any = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, _preload_content=False
            )
        except ApiException as exc:
            if exc.status == HTTP_NOT_FOUND:
                return None
            raise
        try:
            obj: dict[str, Any] = json.loads(response.data)
        finally:
            response.release_conn()
        return obj

    def write(
        self,
        namespace: str,
        name: str,
        desired: Callable[[Mapping[str, Any]], dict[str, Any]],
    ) -> bool:
        """Write ``desired(fresh object)`` unless it is already there.

        Returns:
            True when the status is written (or already right); False when the Hook is gone
            or every attempt met a conflict.
        """
        for _ in range(self.attempts):
            obj = self.read(namespace, name)
            if obj is None:
                return False
            status = desired(obj)
            if same_status(obj.get("status"), status):
                return True
            body = {
                "metadata": {"resourceVersion": (obj.get("metadata") or {}).get("resourceVersion")},
                # None removes a field in a merge patch: an emptied list must not linger
                "status": {**status, "activeEvents": status.get("activeEvents")},
            }
            try:
                patched: Any = self.custom.patch_namespaced_custom_object_status(
                    GROUP,
                    VERSION,
                    namespace,
                    PLURAL,
                    name,
                    body,
                    _content_type=MERGE_PATCH,
                    _preload_content=False,
                )
                patched.drain_conn()  # an unread body would be read as the next reply
                patched.release_conn()
            except ApiException as exc:
                if exc.status == HTTP_CONFLICT:
                    self.conflicts += 1
                    logger.debug("Hook %s/%s changed while its status was written", namespace, name)
                    continue
                if exc.status == HTTP_NOT_FOUND:
                    return False
                raise
            self.writes += 1
            return True
        logger.warning(
            "status of Hook %s/%s not written: it changed %d times in a row",
            namespace,
            name,
            self.attempts,
        )
        return False
