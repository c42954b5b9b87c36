"""A task's finding written back to the cluster: ``AgentFinding`` Events on the object and Hook.

The functions hold no cluster credentials. When a followed task ends, its audit record (outcome
``task:<state>``) carries the finding and, for each ``kubernetes`` destination of its hook,
``report.<n>.kubernetes: pending: object, hook`` (what to write). Each pass of the Hook reporter
hands such records here; ``flush`` writes the Events and records their status back as an audit
record of its own: outcome ``report:kubernetes``, the same task, ``report.<n>.kubernetes``
``sent`` or ``failed: <where>: <why>``.

Written once, across passes and restarts: an Event's name is derived from the task, so a create
answered 409 was written by an earlier pass or run, and counts as sent; a restarted forwarder
reads the audit trail back, where a finding's status record follows its task record, and drops
the findings already reported. A transient failure (429, 5xx, no answer) leaves the finding for
the next pass, up to ``ATTEMPTS`` passes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from khook_core import escaping
from khook_core.forwarder.hook_status import GROUP, VERSION, rfc3339
from khook_core.reportconfig import KUBERNETES_PENDING
from khook_core.state.base import Firing

logger = logging.getLogger(__name__)

REASON: Final = "AgentFinding"
COMPONENT: Final = "khook-forwarder"
OUTCOME: Final = "report:kubernetes"
"""The outcome of the audit record that carries the Events' status."""
KIND: Final = "kubernetes"
MESSAGE_BYTES: Final = 1024
"""An Event's message is kept within 1 KiB (the limit ``events.k8s.io/v1`` enforces on a note)."""
ATTEMPTS: Final = 5
PER_PASS: Final = 200
"""At most this many findings written a pass; the rest wait for the next."""
HTTP_CONFLICT: Final = 409
HTTP_TOO_MANY: Final = 429
HTTP_SERVER: Final = 500
REASON_CHARS: Final = 200
FindingId = tuple[str, str, str]


def finding_id(firing: Firing) -> FindingId:
    return (firing.hook, firing.task_id, firing.event_id)


def pending_keys(firing: Firing) -> dict[str, frozenset[str]]:
    """``report.<n>.kubernetes`` → what it asks for (``object``, ``hook``) in a task record
    (``KubernetesDestination.pending_status``)."""
    keys: dict[str, frozenset[str]] = {}
    for key, status in firing.extra.items():
        if (
            key.startswith("report.")
            and key.endswith(f".{KIND}")
            and status.startswith(KUBERNETES_PENDING)
        ):
            wanted = frozenset(t for t in ("object", "hook") if t in status)
            keys[key] = wanted or frozenset({"object", "hook"})
    return keys


def event_name(name: str, target: str, firing: Firing) -> str:
    """Stable per task and target; a valid object name of at most 253 characters."""
    digest = hashlib.sha256("\0".join((target, *finding_id(firing))).encode()).hexdigest()[:16]
    return f"{name[:200]}.finding.{digest}"


def message_of(firing: Firing) -> str:
    """The finding as plain text a reader can trust, within ``MESSAGE_BYTES`` of UTF-8."""
    head = f"task {firing.task_id} of {firing.agent} ended {firing.task_state or '?'}: "
    text = escaping.clean(
        head + (firing.finding or "(no text)"), MESSAGE_BYTES, ascii_only=False, multiline=True
    )
    while len(text.encode()) > MESSAGE_BYTES:
        text = escaping.cut(text, len(text) - max(1, (len(text.encode()) - MESSAGE_BYTES) // 4))
    return text


@dataclass
class _Finding:
    record: Firing
    keys: dict[str, frozenset[str]]
    done: dict[str, str] = field(default_factory=dict)  # target → "sent" or why it failed
    attempts: int = 0


class Transient(Exception):
    """The API server could not take the write now: try again on the next pass."""


class FindingEvents:
    """Pending findings from the audit trail; ``flush`` writes them and records their status."""

    def __init__(
        self,
        core: client.CoreV1Api,
        record: Callable[[Firing], None],
        *,
        clock: Callable[[], datetime],
        attempts: int = ATTEMPTS,
    ) -> None:
        self.core = core
        self.record = record
        self.clock = clock
        self.attempts = attempts
        self.pending: dict[FindingId, _Finding] = {}
        self.written = 0

    def add(self, firing: Firing) -> None:
        """Take one audit record in: a finding to write, or the status of one written."""
        if firing.outcome == OUTCOME:
            self.pending.pop(finding_id(firing), None)
            return
        if not firing.outcome.startswith("task:") or not firing.task_id:
            return
        keys = pending_keys(firing)
        if keys and finding_id(firing) not in self.pending:
            self.pending[finding_id(firing)] = _Finding(firing, keys)

    def flush(self, hooks: Mapping[str, Mapping[str, Any]]) -> None:
        """Write pending findings' Events; record the status of each finding settled."""
        for ident, finding in list(self.pending.items())[:PER_PASS]:
            finding.attempts += 1
            wanted = frozenset().union(*finding.keys.values())
            transient = False
            for target in sorted(wanted - set(finding.done)):
                try:
                    finding.done[target] = self._write(target, finding.record, hooks)
                except Transient as exc:
                    transient = True
                    if finding.attempts >= self.attempts:
                        finding.done[target] = f"{exc} ({finding.attempts} attempts)"
            if transient and finding.attempts < self.attempts:
                continue
            try:
                self.record(self._status_record(finding))
            except Exception as exc:  # the store: the Events are written, record it next pass
                logger.warning("status of finding %s not recorded: %s", finding.record.task_id, exc)
                continue
            del self.pending[ident]

    def _status_record(self, finding: _Finding) -> Firing:
        statuses: dict[str, str] = {}
        for key, targets in sorted(finding.keys.items()):
            failed = [
                f"{t}: {finding.done[t]}" for t in sorted(targets) if finding.done[t] != "sent"
            ]
            statuses[key] = "sent" if not failed else "failed: " + "; ".join(failed)
            if failed:
                logger.warning(
                    "finding of task %s (%s) not written: %s",
                    finding.record.task_id,
                    finding.record.hook,
                    statuses[key],
                )
        return dataclasses.replace(
            finding.record,
            outcome=OUTCOME,
            at=self.clock(),
            prompt_hash="",
            error="",
            extra=statuses,
            finding="",
            finding_chars="",
        )

    def _write(self, target: str, firing: Firing, hooks: Mapping[str, Mapping[str, Any]]) -> str:
        """``sent`` (or already there), else why not; ``Transient`` when worth trying again."""
        if target == "hook":
            obj = hooks.get(firing.hook)
            if obj is None:
                return "the Hook is not in the cluster"
            meta = obj.get("metadata") or {}
            namespace = str(meta.get("namespace") or "default")
            involved = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "Hook",
                "name": meta.get("name"),
                "namespace": namespace,
                "uid": meta.get("uid"),
            }
        else:
            parts = firing.resource.split("/", 2)
            if len(parts) != 3 or not parts[1] or not parts[2]:
                return f"no object to write on (resource {escaping.quote(firing.resource, 100)})"
            object_namespace, kind, name = parts
            namespace = object_namespace or "default"  # a cluster-scoped object's Events
            involved = {"kind": kind, "name": name, "namespace": object_namespace}
            uid = self._pod_uid(object_namespace, name) if kind == "Pod" else ""
            if uid:  # `kubectl describe pod` lists the Events whose uid is the Pod's
                involved |= {"apiVersion": "v1", "uid": uid}
        at = firing.at
        if firing.finished_at:
            with contextlib.suppress(ValueError):
                at = datetime.fromisoformat(firing.finished_at)
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": event_name(str(involved["name"]), target, firing),
                "namespace": namespace,
            },
            "involvedObject": involved,
            "reason": REASON,
            "type": "Normal" if firing.task_state == "completed" else "Warning",
            "message": message_of(firing),
            "count": 1,
            "firstTimestamp": rfc3339(at),
            "lastTimestamp": rfc3339(at),
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
        }
        try:
            created: Any = self.core.create_namespaced_event(
                namespace,
                body,  # type: ignore[arg-type]  # plain JSON, not the client's model
                _preload_content=False,
            )
            created.drain_conn()  # an unread body would be read as the next reply
            created.release_conn()
        except ApiException as exc:
            if exc.status == HTTP_CONFLICT:
                return "sent"  # written by an earlier pass or run of the forwarder
            why = f"HTTP {exc.status}: {_reason(exc)}"
            if exc.status == HTTP_TOO_MANY or (exc.status or 0) >= HTTP_SERVER:
                raise Transient(why) from exc
            return why
        except HTTPError as exc:
            raise Transient(escaping.clean(str(exc), REASON_CHARS)) from exc
        self.written += 1
        return "sent"

    def _pod_uid(self, namespace: str, name: str) -> str:
        """The Pod's uid when it still exists and may be read (the forwarder's RBAC has
        ``get`` on pods); "" otherwise: the Event is written without it, found by name."""
        try:
            reply: Any = self.core.read_namespaced_pod(name, namespace, _preload_content=False)
            uid = json.loads(reply.data).get("metadata", {}).get("uid")
        except (ApiException, HTTPError, ValueError, AttributeError) as exc:
            logger.debug("uid of Pod %s/%s not read: %s", namespace, name, exc)
            return ""
        return uid if isinstance(uid, str) else ""


def _reason(exc: ApiException) -> str:
    """The API server's own message (its Status body), else the HTTP reason."""
    text = str(exc.reason or "")
    with contextlib.suppress(ValueError, AttributeError):
        text = str(json.loads(exc.body or "{}").get("message") or text)
    return escaping.clean(text, REASON_CHARS)
