"""Firestore ``TaskStore``: one document a tracked task, collection ``tracked_tasks``.

The work list is a range query on ``next_check`` alone (a finished task's is ``NEVER``), which
Firestore's automatic single-field index serves: no composite index to deploy. Every write is
the state store's optimistic read-modify-write (a precondition on the document read), so
concurrent ticks lease disjoint tasks and one transition is written once.

Built on a ``FirestoreStateStore`` handle (its client, retry policy and error wrapping), so
``google.cloud.firestore`` is still imported in ``state/firestore.py`` alone.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import datetime, timedelta
from typing import Any, Final

from khook_core.state import task_fields
from khook_core.state.base import TrackedTask
from khook_core.state.firestore import FirestoreStateStore

TASKS: Final = "tracked_tasks"
CANDIDATES_PER_TASK: Final = 4
MAX_CANDIDATES: Final = 2000


class FirestoreTaskStore:
    """Tracked tasks in Firestore."""

    def __init__(self, state: FirestoreStateStore) -> None:
        self._state = state
        self._tasks = state._client.collection(TASKS)

    @classmethod
    def from_url(cls, url: str, *, project: str | None = None) -> FirestoreTaskStore:
        """``firestore`` or ``firestore:<database>``, as ``FirestoreStateStore.from_url``."""
        return cls(FirestoreStateStore.from_url(url, project=project))

    @staticmethod
    def doc_id(ref: str) -> str:
        return hashlib.sha256(ref.encode("utf-8", "surrogatepass")).hexdigest()

    def track_task(self, *, task: TrackedTask) -> bool:
        def create(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, bool]:
            if doc is not None:
                return None, False
            return _document(task, 1), True

        return bool(self._rmw(task.ref, "track task", create))

    def due_tasks(self, *, now: datetime, limit: int, lease: timedelta) -> list[TrackedTask]:
        if limit <= 0:
            return []
        state = self._state
        # Concurrent ticks see the same earliest tasks and lose some of them to each other:
        # more candidates than asked for let a loser lease the next ones instead.
        query = (
            self._tasks.where(filter=state._firestore.FieldFilter("next_check", "<=", now))
            .order_by("next_check")
            .limit(min(limit * CANDIDATES_PER_TASK, MAX_CANDIDATES))
        )
        with state._wrap("list due tasks", "*"):
            refs = [
                str((snap.to_dict() or {}).get("ref") or "")
                for snap in query.stream(retry=state._retry, timeout=state.timeout)
            ]
        taken: list[TrackedTask] = []
        for ref in refs:
            if len(taken) >= limit:
                break

            def lease_it(
                doc: dict[str, Any] | None,
            ) -> tuple[dict[str, Any] | None, TrackedTask | None]:
                if doc is None:
                    return None, None
                task = _task(doc)
                if task.finished or task.next_check > now:  # another caller took it
                    return None, None
                leased = dataclasses.replace(task, next_check=now + lease, version=task.version + 1)
                return _document(leased, leased.version), leased

            got = self._rmw(ref, "lease task", lease_it)
            if got is not None:
                taken.append(got)
        return taken

    def update_task(self, *, task: TrackedTask, expect: int) -> bool:
        def update(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, bool]:
            if doc is None:
                return None, False
            stored = _task(doc)
            if stored.finished or stored.version != expect:
                return None, False
            return _document(task, expect + 1), True

        return bool(self._rmw(task.ref, "update task", update))

    def read_task(self, *, ref: str) -> TrackedTask | None:
        state = self._state
        with state._wrap("read task", ref):
            snap = self._tasks.document(self.doc_id(ref)).get(
                retry=state._retry, timeout=state.timeout
            )
        return _task(snap.to_dict() or {}) if snap.exists else None

    def _rmw(self, ref: str, what: str, change: Any) -> Any:
        return self._state._read_modify_write(
            self._tasks.document(self.doc_id(ref)), what, ref, change
        )

    def close(self) -> None:
        self._state.close()


def _document(task: TrackedTask, version: int) -> dict[str, Any]:
    doc = task_fields.to_document(task)
    doc["version"] = version
    doc["ref"] = task.ref
    return doc


def _task(doc: dict[str, Any]) -> TrackedTask:
    return task_fields.from_document(doc)
