"""Firestore ``ApprovalStore``: one document an approval, collection ``approvals``.

Every write is the state store's optimistic read-modify-write (a precondition on the document
read), so of two people deciding one approval exactly one decision is stored. The open ones
are read by an equality filter on ``open`` alone and sorted here: no composite index to deploy
(the open approvals of a deployment are a handful).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from khook_core.state import approval_fields
from khook_core.state.base import ApprovalRecord
from khook_core.state.firestore import FirestoreStateStore

APPROVALS: Final = "approvals"


class FirestoreApprovalStore:
    """Approvals in Firestore."""

    def __init__(self, state: FirestoreStateStore) -> None:
        self._state = state
        self._approvals = state._client.collection(APPROVALS)

    @classmethod
    def from_url(cls, url: str, *, project: str | None = None) -> FirestoreApprovalStore:
        """``firestore`` or ``firestore:<database>``, as ``FirestoreStateStore.from_url``."""
        return cls(FirestoreStateStore.from_url(url, project=project))

    def open_approval(self, *, approval: ApprovalRecord) -> tuple[ApprovalRecord, bool]:
        def create(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, Any]:
            if doc is not None:
                return None, (approval_fields.from_document(doc), False)
            new = _document(approval, 1)
            return new, (approval_fields.from_document(new), True)

        stored, created = self._rmw(approval.id, "open approval", create)
        return stored, created

    def get_approval(self, *, id: str) -> ApprovalRecord | None:
        state = self._state
        with state._wrap("read approval", id):
            snap = self._approvals.document(id).get(retry=state._retry, timeout=state.timeout)
        return approval_fields.from_document(snap.to_dict() or {}) if snap.exists else None

    def approvals(self, *, open_only: bool, limit: int) -> list[ApprovalRecord]:
        state = self._state
        if open_only:
            query = self._approvals.where(filter=state._firestore.FieldFilter("open", "==", True))
        else:
            query = self._approvals.order_by(
                "opened_at", direction=state._firestore.Query.DESCENDING
            ).limit(max(limit, 0))
        with state._wrap("list approvals", "*"):
            found = [
                approval_fields.from_document(snap.to_dict() or {})
                for snap in query.stream(retry=state._retry, timeout=state.timeout)
            ]
        found.sort(key=lambda a: (a.opened_at, a.id), reverse=True)
        return found[: max(limit, 0)]

    def due_approvals(self, *, now: datetime, limit: int) -> list[ApprovalRecord]:
        due = [a for a in self.approvals(open_only=True, limit=10_000) if a.deadline <= now]
        due.sort(key=lambda a: (a.deadline, a.id))
        return due[: max(limit, 0)]

    def update_approval(self, *, approval: ApprovalRecord, expect: int) -> bool:
        def update(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, bool]:
            if doc is None or int(doc.get("version") or 0) != expect:
                return None, False
            return _document(approval, expect + 1), True

        return bool(self._rmw(approval.id, "update approval", update))

    def _rmw(self, id: str, what: str, change: Any) -> Any:
        return self._state._read_modify_write(self._approvals.document(id), what, id, change)

    def close(self) -> None:
        self._state.close()


def _document(approval: ApprovalRecord, version: int) -> dict[str, Any]:
    doc = approval_fields.to_document(approval)
    doc["version"] = version
    doc["open"] = approval.is_open
    return doc
