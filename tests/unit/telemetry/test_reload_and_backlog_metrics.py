"""Reloads of the live configuration and the backlog a run carries, as metrics."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from khook_core import telemetry
from khook_core.dispatch.dryrun import DryRunDispatcher
from khook_core.liveconfig import reload, snapshot
from khook_core.pipeline import run_pipeline
from khook_core.runtime import Clock, Runtime
from khook_core.settings import Settings, TelemetrySettings
from khook_core.state.config_memory import MemoryConfigStore
from khook_core.state.memory import MemoryStateStore
from tests.support.configdir import make_config, restart_hook
from tests.support.k8s_events import core_event

NOW = datetime(2026, 1, 5, 10, 35, tzinfo=UTC)


def sums(reader: InMemoryMetricReader, name: str) -> dict[tuple[tuple[str, Any], ...], Any]:
    data = reader.get_metrics_data()
    assert data is not None
    return {
        tuple(sorted((point.attributes or {}).items())): point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    }


def runtime(config: Path, reader: InMemoryMetricReader) -> Runtime:
    return Runtime.build(
        Settings(config_dir=config, state="memory", dispatch="dry-run"),
        clock=Clock(NOW),
        store=MemoryStateStore(),
        dispatcher=DryRunDispatcher(),
        telemetry=telemetry.build(TelemetrySettings(), function="kubernetes", metric_reader=reader),
    )


def test_loaded_and_refused_configurations_are_counted(tmp_path: Path):
    config = make_config(tmp_path, restart_hook(name="web"))
    reader = InMemoryMetricReader()
    base = runtime(config, reader)
    store = MemoryConfigStore()
    reloader = reload.Reloader(base, source="kubernetes", interval=0.0, store=store)
    reloader.current()  # bootstraps version 1 from the files: not a reload

    def publish(**replace: str) -> None:
        files = {**snapshot.files_of(config), **replace}
        store.publish_config(
            files=files, origin="push", hooks=0, digest=snapshot.digest_of(files), now=NOW
        )
        reloader.current()

    publish(**{"hooks/more.yaml": restart_hook(name="api")})
    publish(**{"plugins.yaml": "plugins:\n- {name: kubernetes, enabled: false}\n"})

    counted = sums(reader, "khook.config.reloads")
    assert {dict(k)["outcome"]: p.value for k, p in counted.items()} == {
        "loaded": 1,
        "refused": 1,
    }
    assert {dict(k)["function"] for k in counted} == {"kubernetes"}


def test_the_backlog_a_run_carries_is_recorded_by_size(tmp_path: Path):
    hook = restart_hook(name="web", extensions="coalesce: {window: 5m}")
    reader = InMemoryMetricReader()
    rt = runtime(make_config(tmp_path, hook), reader)
    for i in range(3):  # one run, then two coalesced into its window's backlog
        run_pipeline("kubernetes", core_event(name=f"web-{i}", uid=f"u{i}"), {}, runtime=rt)
    rt.clock = Clock(datetime(2026, 1, 5, 10, 45, tzinfo=UTC))  # the window is over
    decisions = run_pipeline("kubernetes", core_event(name="web-9", uid="u9"), {}, runtime=rt)

    assert [d.decision for d in decisions] == ["dispatched"]
    [(attributes, point)] = sums(reader, "khook.backlog.size").items()
    assert dict(attributes)["source"] == "kubernetes"
    assert (point.count, point.sum) == (1, 2)
