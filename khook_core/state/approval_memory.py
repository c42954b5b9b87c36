"""In-memory ``ApprovalStore``: the reference implementation, shared by a process's threads."""

from __future__ import annotations

import dataclasses
import threading
from datetime import datetime

from khook_core.state.base import ApprovalRecord


class MemoryApprovalStore:
    """Approvals in a dict behind one lock (every method is one critical section)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._approvals: dict[str, ApprovalRecord] = {}

    def open_approval(self, *, approval: ApprovalRecord) -> tuple[ApprovalRecord, bool]:
        with self._lock:
            stored = self._approvals.get(approval.id)
            if stored is not None:
                return stored, False
            stored = dataclasses.replace(approval, version=1)
            self._approvals[approval.id] = stored
            return stored, True

    def get_approval(self, *, id: str) -> ApprovalRecord | None:
        with self._lock:
            return self._approvals.get(id)

    def approvals(self, *, open_only: bool, limit: int) -> list[ApprovalRecord]:
        with self._lock:
            found = [a for a in self._approvals.values() if a.is_open or not open_only]
        found.sort(key=lambda a: (a.opened_at, a.id), reverse=True)
        return found[: max(limit, 0)]

    def due_approvals(self, *, now: datetime, limit: int) -> list[ApprovalRecord]:
        with self._lock:
            due = [a for a in self._approvals.values() if a.is_open and a.deadline <= now]
        due.sort(key=lambda a: (a.deadline, a.id))
        return due[: max(limit, 0)]

    def update_approval(self, *, approval: ApprovalRecord, expect: int) -> bool:
        with self._lock:
            stored = self._approvals.get(approval.id)
            if stored is None or stored.version != expect:
                return False
            self._approvals[approval.id] = dataclasses.replace(approval, version=expect + 1)
            return True

    def close(self) -> None:
        """Nothing to release."""
