"""Firestore ``ConfigStore``: the snapshot in one document, ``config/current``.

The version check reads the ``version`` field alone (a projection), so a function's read once
an interval never fetches the files. The files travel zlib-compressed in one bytes field: a
thousand hooks fit well inside Firestore's 1 MiB document limit. Publishing is the state
store's optimistic read-modify-write (a precondition on the document read, a writer token that
recognises a retried write of our own), so concurrent publishers get distinct versions.

Built on a ``FirestoreStateStore`` handle (its client, retry policy and error wrapping), so
``google.cloud.firestore`` is still imported in ``state/firestore.py`` alone.
"""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime
from typing import Any, Final

from khook_core.state.base import ConfigSnapshot
from khook_core.state.firestore import FirestoreStateStore

CONFIG: Final = "config"
CURRENT: Final = "current"


class FirestoreConfigStore:
    """The current configuration snapshot in Firestore."""

    def __init__(self, state: FirestoreStateStore) -> None:
        self._state = state
        self._ref = state._client.collection(CONFIG).document(CURRENT)

    @classmethod
    def from_url(cls, url: str, *, project: str | None = None) -> FirestoreConfigStore:
        """``firestore`` or ``firestore:<database>``, as ``FirestoreStateStore.from_url``."""
        return cls(FirestoreStateStore.from_url(url, project=project))

    def config_version(self) -> int:
        state = self._state
        with state._wrap("config version", CURRENT):
            snap = self._ref.get(field_paths=["version"], retry=state._retry, timeout=state.timeout)
        return _int((snap.to_dict() or {}).get("version")) if snap.exists else 0

    def read_config(self) -> ConfigSnapshot | None:
        state = self._state
        with state._wrap("config read", CURRENT):
            snap = self._ref.get(retry=state._retry, timeout=state.timeout)
        if not snap.exists:
            return None
        doc = snap.to_dict() or {}
        at = doc.get("published_at")
        published = (
            datetime.fromtimestamp(at.timestamp(), UTC)
            if isinstance(at, datetime)
            else datetime.fromtimestamp(0, UTC)
        )
        files = json.loads(zlib.decompress(bytes(doc.get("files") or b"")) or b"{}")
        return ConfigSnapshot(
            version=_int(doc.get("version")),
            origin=str(doc.get("origin") or ""),
            published_at=published,
            files={str(k): str(v) for k, v in files.items()},
            hooks=_int(doc.get("hooks")),
            digest=str(doc.get("digest") or ""),
        )

    def publish_config(
        self,
        *,
        files: dict[str, str],
        origin: str,
        hooks: int,
        digest: str,
        now: datetime,
        expect: int | None = None,
    ) -> int | None:
        body = zlib.compress(json.dumps(files, ensure_ascii=True).encode("ascii"))

        def publish(doc: dict[str, Any] | None) -> tuple[dict[str, Any] | None, int | None]:
            version = 0 if doc is None else _int(doc.get("version"))
            if expect is not None and version != expect:
                return None, None
            fields = {
                "version": version + 1,
                "origin": origin,
                "published_at": now,
                "hooks": hooks,
                "digest": digest,
                "files": body,
            }
            return fields, version + 1

        return self._state._read_modify_write(self._ref, "config publish", CURRENT, publish)

    def close(self) -> None:
        self._state.close()


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0
