"""Firestore ``SilenceStore``: one document a silence in the ``silences`` collection.

Adding is the state store's optimistic read-modify-write with a ``create`` precondition, so
of two processes adding one silence exactly one creates it (the other reads it back); a retried
create of our own is recognised by its writer token. Listing reads the collection newest end
first and stops at the first silence that ended (silences are few, and the read is once an
interval per instance).

Built on a ``FirestoreStateStore`` handle (its client, retry policy and error wrapping), so
``google.cloud.firestore`` is still imported in ``state/firestore.py`` alone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from khook_core.state.base import SilenceRecord
from khook_core.state.firestore import FirestoreStateStore

SILENCES: Final = "silences"


class FirestoreSilenceStore:
    """Silences in Firestore, document id = hashed silence id."""

    def __init__(self, state: FirestoreStateStore) -> None:
        self._state = state
        self._collection = state._client.collection(SILENCES)

    @classmethod
    def from_url(cls, url: str, *, project: str | None = None) -> FirestoreSilenceStore:
        """``firestore`` or ``firestore:<database>``, as ``FirestoreStateStore.from_url``."""
        return cls(FirestoreStateStore.from_url(url, project=project))

    def _ref(self, id: str) -> Any:
        return self._collection.document(self._state.doc_id(id))

    def add_silence(self, *, silence: SilenceRecord) -> tuple[SilenceRecord, bool]:
        def create(
            doc: dict[str, Any] | None,
        ) -> tuple[dict[str, Any] | None, tuple[SilenceRecord, bool]]:
            if doc is not None:
                return None, (_record(doc), False)
            return _document(silence), (silence, True)

        return self._state._read_modify_write(
            self._ref(silence.id), "add silence", silence.id, create
        )

    def get_silence(self, *, id: str) -> SilenceRecord | None:
        state = self._state
        with state._wrap("get silence", id):
            snap = self._ref(id).get(retry=state._retry, timeout=state.timeout)
        return _record(snap.to_dict() or {}) if snap.exists else None

    def silences(self, *, now: datetime, include_expired: bool, limit: int) -> list[SilenceRecord]:
        state = self._state
        query = self._collection.order_by("ends_at", direction=state._firestore.Query.DESCENDING)
        found: list[SilenceRecord] = []
        with state._wrap("list silences", "*"):
            for snap in query.stream(retry=state._retry, timeout=state.timeout):
                record = _record(snap.to_dict() or {})
                if not include_expired and record.ends_at <= now:
                    break  # newest end first: every later one ended too
                found.append(record)
                if len(found) >= limit:
                    break
        return found

    def expire_silence(self, *, id: str, now: datetime, by: str) -> SilenceRecord | None:
        def expire(
            doc: dict[str, Any] | None,
        ) -> tuple[dict[str, Any] | None, SilenceRecord | None]:
            if doc is None:
                return None, None
            record = _record(doc)
            if record.ends_at <= now:
                return None, record
            ends = max(now, record.starts_at)
            fields = {**_document(record), "ends_at": ends, "expired_by": by}
            return fields, _record(fields)

        return self._state._read_modify_write(self._ref(id), "expire silence", id, expire)

    def close(self) -> None:
        self._state.close()


def _document(s: SilenceRecord) -> dict[str, Any]:
    return {
        "id": s.id,
        "matcher": s.matcher,
        "author": s.author,
        "comment": s.comment,
        "starts_at": s.starts_at,
        "ends_at": s.ends_at,
        "created_at": s.created_at,
        "hook": s.hook,
        "source": s.source,
        "drop": s.drop,
        "expired_by": s.expired_by,
    }


def _at(value: Any) -> datetime:
    if isinstance(value, datetime):
        return datetime.fromtimestamp(value.timestamp(), UTC)
    return datetime.fromtimestamp(0, UTC)


def _record(doc: dict[str, Any]) -> SilenceRecord:
    return SilenceRecord(
        id=str(doc.get("id") or ""),
        matcher=str(doc.get("matcher") or ""),
        author=str(doc.get("author") or ""),
        comment=str(doc.get("comment") or ""),
        starts_at=_at(doc.get("starts_at")),
        ends_at=_at(doc.get("ends_at")),
        created_at=_at(doc.get("created_at")),
        hook=str(doc.get("hook") or ""),
        source=str(doc.get("source") or ""),
        drop=bool(doc.get("drop", False)),
        expired_by=str(doc.get("expired_by") or ""),
    )
