from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from khook_core.errors import ConfigError, PluginLoadError
from khook_core.pipeline import run_pipeline
from khook_core.runtime import Runtime, get_runtime, load_config, reset_runtime, start_function
from khook_core.settings import Settings
from tests.support.configdir import SHOP_HOOK, make_config
from tests.support.k8s_events import core_event

NOW = datetime(2026, 1, 5, 10, 35, tzinfo=UTC)


def test_concurrent_first_requests_share_one_runtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("KHOOK_CONFIG_DIR", str(make_config(tmp_path, SHOP_HOOK)))
    monkeypatch.setenv("KHOOK_STATE", "memory")
    monkeypatch.setenv("KHOOK_DISPATCH", "dry-run")
    seen: list[object] = []
    start = threading.Barrier(8)

    def first_request() -> None:
        start.wait()
        seen.append(get_runtime())

    threads = [threading.Thread(target=first_request) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(r) for r in seen}) == 1
    reset_runtime()
    assert get_runtime() is not seen[0]


def test_a_broken_plugin_is_logged_once_and_fails_only_its_own_requests(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    plugins = "plugins:\n- name: kubernetes\n- name: kafka\n  config: {bogus: 1}\n"
    settings = Settings(
        config_dir=make_config(tmp_path, SHOP_HOOK, plugins=plugins),
        state="memory",
        dispatch="dry-run",
    )
    with caplog.at_level(logging.ERROR):
        runtime = Runtime.build(settings, clock=lambda: NOW)
        now = [run_pipeline("kubernetes", core_event(), {}, runtime=runtime) for _ in range(2)]
        for _ in range(2):
            with pytest.raises(PluginLoadError, match=r"plugin kafka: config\.bogus"):
                run_pipeline("kafka", {}, {"kafka.topic": "t"}, runtime=runtime)
    assert [d.decision for d in now[0]] == ["dispatched", "dispatched"]
    (record,) = [r for r in caplog.records if "plugin kafka" in r.getMessage()]
    assert record.getMessage().startswith(
        f"{settings.config_dir / 'plugins.yaml'}:4: plugin kafka: config.bogus: "
        "Extra inputs are not permitted"
    )


def test_a_mapping_file_that_fails_does_not_make_every_event_type_unknown(tmp_path: Path):
    # high-cpu is a type of the mapping table only (no source declares it)
    hook = SHOP_HOOK.replace("{{.Reason}}", "{{.Nope}}").replace("probe-failed", "high-cpu")
    config = make_config(tmp_path, hook)
    mappings = config / "event-mappings.yaml"
    mappings.write_text("mappings:\n- eventSource: kubernetes\n  eventType: PodRestart\n")
    with pytest.raises(ConfigError) as info:
        load_config(config)
    messages = [p.message for p in info.value.problems]
    assert len(messages) == 2, messages
    assert messages[0].startswith("eventType: String should match pattern")
    assert "unknown placeholder {{.Nope}}" in messages[1]


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "event-mappings.yaml",
            "mappings:\n- eventSource: kubernetes\n  eventType: pod-restart\n"
            "  severity: error\n  severity: info\n",
            "5: duplicate key 'severity' (first at line 4)",
        ),
        (
            "plugins.yaml",
            "plugins:\n- name: kubernetes\n  enabled: true\n  enabled: false\n",
            "4: duplicate key 'enabled' (first at line 3)",
        ),
        (
            "hooks/hooks.yaml",
            SHOP_HOOK.replace(
                '    prompt: "Probe of', '    prompt: "first"\n    prompt: "Probe of'
            ),
            "12: duplicate key 'prompt' (first at line 11)",
        ),
        (
            "budgets.yaml",
            "maxConcurrentRuns: 3\nagents: {}\nmaxConcurrentRuns: 30\n",
            "3: duplicate key 'maxConcurrentRuns' (first at line 1)",
        ),
    ],
    ids=["mappings", "plugins", "hooks", "budgets"],
)
def test_a_key_written_twice_is_an_error_naming_file_line_and_key(
    tmp_path: Path, name: str, text: str, expected: str
):
    config = make_config(tmp_path, SHOP_HOOK)
    (config / name).write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert [str(p) for p in info.value.problems] == [f"{config / name}:{expected}"]


def test_a_hook_may_name_a_source_this_process_disables_or_a_disabled_mapping(tmp_path: Path):
    """Another function serves a source disabled here; a disabled row is switched off, not wrong."""
    hooks = SHOP_HOOK.replace(
        "spec:\n  eventConfigurations:",
        "spec:\n  sources: [kubernetes, kafka]\n  eventConfigurations:",
    ).replace("eventType: probe-failed", "eventType: consumer-lag")
    config = make_config(tmp_path, hooks)
    mappings = config / "event-mappings.yaml"
    mappings.write_text(
        mappings.read_text().replace(
            '"Kafka consumer lag detected"\n', '"lag"\n    enabled: false\n'
        )
    )
    loaded = load_config(config, disabled_sources=frozenset({"kafka", "cdc"}))
    assert [r.event_type for r in loaded.hooks.rules] == [
        "pod-restart",
        "consumer-lag",
        "pod-restart",
    ]
    assert "kafka" not in loaded.sources.names()
    assert loaded.mapping.drop_reason("kafka", "consumer-lag") == "disabled"


def test_the_runtime_a_function_starts_with_is_the_one_its_requests_get(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("KHOOK_CONFIG_DIR", str(make_config(tmp_path, SHOP_HOOK)))
    monkeypatch.setenv("KHOOK_STATE", "memory")
    monkeypatch.setenv("KHOOK_DISPATCH", "dry-run")
    reset_runtime()
    start_function(Settings.from_env(), "kubernetes")
    monkeypatch.setenv("KHOOK_CONFIG_DIR", str(tmp_path / "gone"))  # read once, at the start
    try:
        assert get_runtime().config.hooks.hooks() == ["shop/audit", "shop/web"]
    finally:
        reset_runtime()
