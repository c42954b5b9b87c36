"""State stores: dedup claims, the audit trail, storm control's counters and backlogs (four
contracts in ``base``; see docs/state.md). ``open_store`` picks one from a URL."""

from __future__ import annotations

from khook_core.errors import ConfigError, Problem
from khook_core.state.base import (
    DEFAULT_DEDUP_WINDOW,
    ApprovalStore,
    ConfigStore,
    DedupKey,
    Firing,
    IncidentStore,
    SilenceStore,
    StateStore,
    TaskStore,
)

__all__ = [
    "DEFAULT_DEDUP_WINDOW",
    "ApprovalStore",
    "ConfigStore",
    "DedupKey",
    "Firing",
    "IncidentStore",
    "SilenceStore",
    "StateStore",
    "TaskStore",
    "open_approval_store",
    "open_config_store",
    "open_incident_store",
    "open_silence_store",
    "open_store",
    "open_task_store",
]


def open_store(url: str, *, project: str | None = None) -> StateStore:
    """``memory``, ``sqlite:PATH`` or ``firestore`` (imports the Google client only then).

    Args:
        project: Firestore's project (``FirestoreSettings.project_id()``); None: the
            credentials'.
    """
    if url == "memory":
        from khook_core.state.memory import MemoryStateStore

        return MemoryStateStore()
    if url.startswith("sqlite:"):
        from khook_core.state.sqlite import SqliteStateStore

        return SqliteStateStore(url.removeprefix("sqlite:") or ".khook/state.db")
    if url == "firestore" or url.startswith("firestore:"):
        from khook_core.state.firestore import FirestoreStateStore

        return FirestoreStateStore.from_url(url, project=project)
    raise _unknown_store(url)


def _unknown_store(url: str) -> ConfigError:
    return ConfigError(
        [
            Problem(
                "KHOOK_STATE",
                None,
                f"unknown state store {url!r} (memory, sqlite:PATH or firestore)",
            )
        ]
    )


def open_config_store(url: str, *, project: str | None = None) -> ConfigStore:
    """The configuration snapshot's handle on the store ``url`` names (as ``open_store``)."""
    if url == "memory":
        from khook_core.state.config_memory import MemoryConfigStore

        return MemoryConfigStore()
    if url.startswith("sqlite:"):
        from khook_core.state.config_sqlite import SqliteConfigStore

        return SqliteConfigStore(url.removeprefix("sqlite:") or ".khook/state.db")
    if url == "firestore" or url.startswith("firestore:"):
        from khook_core.state.config_firestore import FirestoreConfigStore

        return FirestoreConfigStore.from_url(url, project=project)
    raise _unknown_store(url)


def open_task_store(url: str, *, project: str | None = None) -> TaskStore:
    """The tracked tasks' handle on the store ``url`` names (as ``open_store``)."""
    if url == "memory":
        from khook_core.state.task_memory import MemoryTaskStore

        return MemoryTaskStore()
    if url.startswith("sqlite:"):
        from khook_core.state.task_sqlite import SqliteTaskStore

        return SqliteTaskStore(url.removeprefix("sqlite:") or ".khook/state.db")
    if url == "firestore" or url.startswith("firestore:"):
        from khook_core.state.task_firestore import FirestoreTaskStore

        return FirestoreTaskStore.from_url(url, project=project)
    raise _unknown_store(url)


def open_silence_store(url: str, *, project: str | None = None) -> SilenceStore:
    """The silences' handle on the store ``url`` names (as ``open_store``)."""
    if url == "memory":
        from khook_core.state.silence_memory import MemorySilenceStore

        return MemorySilenceStore()
    if url.startswith("sqlite:"):
        from khook_core.state.silence_sqlite import SqliteSilenceStore

        return SqliteSilenceStore(url.removeprefix("sqlite:") or ".khook/state.db")
    if url == "firestore" or url.startswith("firestore:"):
        from khook_core.state.silence_firestore import FirestoreSilenceStore

        return FirestoreSilenceStore.from_url(url, project=project)
    raise _unknown_store(url)


def open_approval_store(url: str, *, project: str | None = None) -> ApprovalStore:
    """The approvals' handle on the store ``url`` names (as ``open_store``)."""
    if url == "memory":
        from khook_core.state.approval_memory import MemoryApprovalStore

        return MemoryApprovalStore()
    if url.startswith("sqlite:"):
        from khook_core.state.approval_sqlite import SqliteApprovalStore

        return SqliteApprovalStore(url.removeprefix("sqlite:") or ".khook/state.db")
    if url == "firestore" or url.startswith("firestore:"):
        from khook_core.state.approval_firestore import FirestoreApprovalStore

        return FirestoreApprovalStore.from_url(url, project=project)
    raise _unknown_store(url)


def open_incident_store(url: str, *, project: str | None = None) -> IncidentStore:
    """The incidents' handle on the store ``url`` names (as ``open_store``)."""
    if url == "memory":
        from khook_core.state.incident_memory import MemoryIncidentStore

        return MemoryIncidentStore()
    if url.startswith("sqlite:"):
        from khook_core.state.incident_sqlite import SqliteIncidentStore

        return SqliteIncidentStore(url.removeprefix("sqlite:") or ".khook/state.db")
    if url == "firestore" or url.startswith("firestore:"):
        from khook_core.state.incident_firestore import FirestoreIncidentStore

        return FirestoreIncidentStore.from_url(url, project=project)
    raise _unknown_store(url)
