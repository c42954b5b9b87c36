"""In-memory ``TaskStore``: the reference implementation, shared by the threads of a process."""

from __future__ import annotations

import dataclasses
import heapq
import threading
from datetime import datetime, timedelta

from khook_core.state.base import TrackedTask


class MemoryTaskStore:
    """Tracked tasks in a dict behind one lock (every method is one critical section)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tasks: dict[str, TrackedTask] = {}

    def track_task(self, *, task: TrackedTask) -> bool:
        with self._lock:
            if task.ref in self._tasks:
                return False
            self._tasks[task.ref] = dataclasses.replace(task, version=1)
            return True

    def due_tasks(self, *, now: datetime, limit: int, lease: timedelta) -> list[TrackedTask]:
        with self._lock:
            due = heapq.nsmallest(
                max(limit, 0),
                (t for t in self._tasks.values() if not t.finished and t.next_check <= now),
                key=lambda t: (t.next_check, t.ref),
            )
            taken = []
            for task in due:
                leased = dataclasses.replace(task, next_check=now + lease, version=task.version + 1)
                self._tasks[task.ref] = leased
                taken.append(leased)
            return taken

    def update_task(self, *, task: TrackedTask, expect: int) -> bool:
        with self._lock:
            stored = self._tasks.get(task.ref)
            if stored is None or stored.finished or stored.version != expect:
                return False
            self._tasks[task.ref] = dataclasses.replace(task, version=expect + 1)
            return True

    def read_task(self, *, ref: str) -> TrackedTask | None:
        with self._lock:
            return self._tasks.get(ref)

    def close(self) -> None:
        """Nothing to release."""
