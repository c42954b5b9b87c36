"""Builders shared by the forwarder's tests: a fixed clock, Event objects, a configured filter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from khook_core.forwarder.app import load_source
from khook_core.forwarder.filtering import EventFilter
from tests.fixtures.kube_api import EVENTS_API, FakeKubeApi

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 1, 5, 10, 30, tzinfo=UTC)


def event(api: str = EVENTS_API, *, age: timedelta = timedelta(seconds=5),
          **fields: Any) -> dict[str, Any]:
    """One Event object shaped as the API server returns it, last seen ``age`` before NOW."""
    return FakeKubeApi(api=api).create(when=NOW - age, **fields)


def make_filter(*, forward_all: bool = False, api: str = EVENTS_API,
                config_dir: Path = REPO / "config") -> EventFilter:
    """The filter the forwarder builds from ``config_dir``, on the fixed clock."""
    source, mapping = load_source(config_dir, lambda: NOW, need_mapping=not forward_all)
    return EventFilter(source=source, mapping=mapping, api=api, cluster="prod-eu",
                       forward_all=forward_all, clock=lambda: NOW)
