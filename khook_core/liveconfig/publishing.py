"""Validate a config directory as a snapshot, then publish it: ``khook config push``, the
local stack's watcher and the forwarder's cluster Hooks all go through here.

Validation comes first and is the same as ``khook validate``; an invalid configuration raises
``ConfigError`` with every problem and nothing is written. Publishing files identical to the
live snapshot's (same digest) writes nothing either, so a CI job that pushes on every commit
does not churn versions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from khook_core import runtime
from khook_core.liveconfig import snapshot
from khook_core.state.base import ConfigStore


@dataclass(frozen=True)
class Published:
    """What a publish did."""

    version: int  # the live version afterwards
    changed: bool  # False: the store already held these files
    config: runtime.Config  # the configuration as validated


def publish_files(
    files: Mapping[str, str],
    store: ConfigStore,
    *,
    origin: str,
    label: str,
    now: datetime,
    disabled_sources: frozenset[str] = frozenset(),
    check_sources: bool = True,
) -> Published:
    """Validate ``files`` as a function would load them, then publish them unless unchanged.

    Raises:
        ConfigError: every problem (nothing published).
        TransientError: the store failed (the publish may or may not have landed).
    """
    digest = snapshot.digest_of(files)
    config = snapshot.load_files(
        files,
        label=label,
        version="",
        disabled_sources=disabled_sources,
        check_sources=check_sources,
    )
    current = store.read_config()
    if current is not None and current.digest == digest:
        config.version = str(current.version)
        return Published(current.version, False, config)
    version = store.publish_config(
        files=dict(files),
        origin=origin,
        hooks=len(config.hooks.hooks()),
        digest=digest,
        now=now,
    )
    assert version is not None  # no ``expect``: a publish always lands
    config.version = str(version)
    return Published(version, True, config)
