"""The settings tree: every variable lands where the code reads it, and a bad one is named.

The tables below list every variable of the tree; ``test_the_tables_cover_every_variable``
fails when a field is added without a row here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from khook_core.dispatch import build_dispatcher
from khook_core.dispatch.routing import RoutingDispatcher
from khook_core.envsettings import EnvSettings, env_names, nested_group
from khook_core.errors import ConfigError
from khook_core.settings import Settings
from khook_core.transport.http import HttpCredentials, credentials_for, env_prefix


def secret(value: Any) -> Any:
    return None if value is None else value.get_secret_value()


VARIABLES: list[tuple[str, str, Callable[[Settings], Any], Any]] = [
    ("KHOOK_CONFIG_DIR", "/etc/khook", lambda s: s.config_dir, Path("/etc/khook")),
    ("KHOOK_STATE", "firestore:khook", lambda s: s.state, "firestore:khook"),
    ("KHOOK_DISPATCH", "dry-run", lambda s: s.dispatch, "dry-run"),
    ("KHOOK_LOG_FORMAT", "json", lambda s: s.log_format, "json"),
    ("KHOOK_LOG_LEVEL", "DEBUG", lambda s: s.log_level, "DEBUG"),
    ("KHOOK_DISABLE_SOURCES", "kafka,cdc", lambda s: s.disable_sources, "kafka,cdc"),
    ("KHOOK_DEDUP_WINDOW", "15m", lambda s: s.dedup_window, 900.0),
    ("KHOOK_BODY_READ_TIMEOUT", "20", lambda s: s.body_read_timeout, 20.0),
    ("KHOOK_INVOCATION_BUDGET", "1m", lambda s: s.invocation_budget, 60.0),
    ("KHOOK_CONFIG_REFRESH", "2s", lambda s: s.config_refresh, 2.0),
    (
        "KHOOK_REDACTION_KEY",
        "0123456789abcdef0123",
        lambda s: secret(s.redaction_key),
        "0123456789abcdef0123",
    ),
    ("K_SERVICE", "khook-kafka", lambda s: s.cloud_run_service, "khook-kafka"),
    (
        "KAGENT_API_URL",
        "http://kagent:8083/",
        lambda s: s.dispatchers.kagent_api_url,
        "http://kagent:8083",
    ),
    (
        "KAGENT_API_BASE_URL",
        "http://old:8083",
        lambda s: s.dispatchers.kagent_api_url,
        "http://old:8083",
    ),
    (
        "KAGENT_USER_ID",
        "ops@example.com",
        lambda s: s.dispatchers.kagent_user_id,
        "ops@example.com",
    ),
    ("KAGENT_API_TIMEOUT", "1m30s", lambda s: s.dispatchers.kagent_api_timeout, 90.0),
    ("KHOOK_A2A_VERSION", "1.0", lambda s: s.dispatchers.a2a_version, "1.0"),
    ("KHOOK_A2A_TOKEN", "s3cret", lambda s: secret(s.dispatchers.a2a_token), "s3cret"),
    (
        "KHOOK_A2A_HEADERS",
        '{"X-Tenant": "shop"}',
        lambda s: s.dispatchers.a2a_headers,
        {"X-Tenant": "shop"},
    ),
    ("KHOOK_KAGENT_SESSIONS", "true", lambda s: s.dispatchers.kagent_sessions, True),
    ("KHOOK_DISPATCH_RETRIES", "4", lambda s: s.dispatchers.dispatch_retries, 4),
    ("KHOOK_DISPATCH_BACKOFF", "250ms", lambda s: s.dispatchers.dispatch_backoff, 0.25),
    ("KHOOK_DISPATCH_MAX_BACKOFF", "10", lambda s: s.dispatchers.dispatch_max_backoff, 10.0),
    ("KHOOK_DISPATCH_BUDGET", "30s", lambda s: s.dispatchers.dispatch_budget, 30.0),
    ("KHOOK_CONNECT_TIMEOUT", "2", lambda s: s.dispatchers.connect_timeout, 2.0),
    ("KHOOK_WEBHOOK_TIMEOUT", "15s", lambda s: s.dispatchers.webhook_timeout, 15.0),
    ("GOOGLE_CLOUD_PROJECT", "prod-1", lambda s: s.firestore.project_id(), "prod-1"),
    ("FIRESTORE_EMULATOR_HOST", "127.0.0.1:8686", lambda s: s.firestore.project_id(), "demo-khook"),
    ("KHOOK_CONSOLE_TOKEN", "c0nsole", lambda s: secret(s.console.token), "c0nsole"),
    ("KHOOK_CONSOLE_ALLOW_REMOTE", "true", lambda s: s.console.allow_remote, True),
    (
        "KHOOK_CONSOLE_TASK_URL",
        "https://kagent.example/{agent}/{task_id}",
        lambda s: s.console.task_url,
        "https://kagent.example/{agent}/{task_id}",
    ),
    ("KHOOK_TELEMETRY", "gcp", lambda s: s.telemetry.mode, "gcp"),
    ("KHOOK_TELEMETRY_EXPORT_INTERVAL", "2m", lambda s: s.telemetry.export_interval, 120.0),
    ("KHOOK_TELEMETRY_SAMPLE_RATIO", "0.25", lambda s: s.telemetry.sample_ratio, 0.25),
]
"""(variable, value, where the code reads it, what it reads)."""

CREDENTIALS: list[tuple[str, str, Callable[[HttpCredentials], Any], Any]] = [
    ("TOKEN", "tok", lambda c: c.bearer(), "tok"),
    ("HMAC_SECRET", "key", lambda c: c.signing_key(), "key"),
    (
        "STANDARD_WEBHOOKS_SECRET",
        "whsec_a2V5",
        lambda c: secret(c.standard_webhooks_secret),
        "whsec_a2V5",
    ),
    ("PAGERDUTY_SECRET", "pd", lambda c: secret(c.pagerduty_secret), "pd"),
    ("ALLOW_UNAUTHENTICATED", "true", lambda c: c.allow_unauthenticated, True),
]
"""(``KHOOK_<SOURCE>_`` suffix, value, where the code reads it, what it reads)."""

INVALID: list[tuple[str, str, str]] = [
    ("KHOOK_DISPATCH", "sometimes", "Input should be 'auto' or 'dry-run'"),
    ("KHOOK_LOG_FORMAT", "xml", "Input should be 'json' or 'text'"),
    ("KHOOK_DEDUP_WINDOW", "soon", "invalid duration 'soon'"),
    ("KHOOK_DEDUP_WINDOW", "0", "greater than 0"),
    ("KHOOK_BODY_READ_TIMEOUT", "301", "less than or equal to 300"),
    ("KHOOK_INVOCATION_BUDGET", "-5", "invalid duration '-5'"),
    ("KHOOK_CONFIG_REFRESH", "2h", "less than or equal to 3600"),
    ("KAGENT_API_URL", "ftp://kagent", "should match pattern"),
    ("KAGENT_API_BASE_URL", "kagent:8083", "should match pattern"),
    ("KAGENT_USER_ID", "", "at least 1 character"),
    ("KAGENT_API_TIMEOUT", "400s", "less than or equal to 300"),
    ("KAGENT_API_TIMEOUT", "1d", "invalid duration '1d'"),
    ("KHOOK_A2A_VERSION", "2.0", "Input should be 'auto', '0.3' or '1.0'"),
    ("KHOOK_A2A_HEADERS", "{not json", "not valid JSON"),
    ("KHOOK_KAGENT_SESSIONS", "maybe", "valid boolean"),
    ("KHOOK_DISPATCH_RETRIES", "11", "less than or equal to 10"),
    ("KHOOK_DISPATCH_BACKOFF", "31", "less than or equal to 30"),
    ("KHOOK_DISPATCH_MAX_BACKOFF", "2m", "less than or equal to 60"),
    ("KHOOK_DISPATCH_BUDGET", "0s", "greater than 0"),
    ("KHOOK_CONNECT_TIMEOUT", "fast", "invalid duration 'fast'"),
    ("KHOOK_WEBHOOK_TIMEOUT", "301", "less than or equal to 300"),
    ("KHOOK_REDACTION_KEY", "too-short", "at least 16"),
    ("KHOOK_CONSOLE_ALLOW_REMOTE", "maybe", "valid boolean"),
    ("KHOOK_CONSOLE_TASK_URL", "javascript:alert(1)", "should match pattern"),
]
"""(variable, value, what the error says about it)."""


def variables_of(group: type[EnvSettings]) -> set[str]:
    names: set[str] = set()
    for name, info in group.model_fields.items():
        nested = nested_group(info)
        names |= variables_of(nested) if nested else set(env_names(name, info, group.env_prefix))
    return names


def test_the_tables_cover_every_variable():
    assert variables_of(Settings) == {variable for variable, *_ in VARIABLES}
    assert set(HttpCredentials.model_fields) == {suffix.lower() for suffix, *_ in CREDENTIALS}


@pytest.mark.parametrize(
    ("variable", "value", "read", "expected"), VARIABLES, ids=[row[0] for row in VARIABLES]
)
def test_each_variable_is_read_into_its_place_in_the_tree(
    variable: str, value: str, read: Callable[[Settings], Any], expected: Any
):
    default = read(Settings.from_env({}))
    assert default != expected  # so the row shows the variable, not a default
    assert read(Settings.from_env({variable: value})) == expected


@pytest.mark.parametrize(
    ("suffix", "value", "read", "expected"), CREDENTIALS, ids=[row[0] for row in CREDENTIALS]
)
def test_each_source_reads_its_own_credentials_from_the_tree(
    suffix: str, value: str, read: Callable[[HttpCredentials], Any], expected: Any
):
    settings = Settings.from_env({f"KHOOK_ALERTMANAGER_{suffix}": value})
    assert read(credentials_for(settings, "alertmanager")) == expected
    assert read(credentials_for(settings, "webhook")) != expected
    assert env_prefix("my-source") == "KHOOK_MY_SOURCE_"


@pytest.mark.parametrize(
    ("variable", "value", "message"), INVALID, ids=[f"{v}={x}" for v, x, _ in INVALID]
)
def test_an_invalid_value_is_a_config_error_naming_the_variable(
    variable: str, value: str, message: str
):
    with pytest.raises(ConfigError) as info:
        Settings.from_env({variable: value})
    [problem] = info.value.problems
    assert problem.message.startswith(f"{variable}: ")
    assert message in problem.message


def test_every_invalid_variable_is_reported_at_once_nested_groups_included():
    with pytest.raises(ConfigError) as info:
        Settings.from_env(
            {"KHOOK_DISPATCH": "x", "KAGENT_API_TIMEOUT": "x", "KHOOK_A2A_HEADERS": "x"}
        )
    named = sorted(p.message.split(":")[0] for p in info.value.problems)
    assert named == ["KAGENT_API_TIMEOUT", "KHOOK_A2A_HEADERS", "KHOOK_DISPATCH"]


def test_an_invalid_credential_is_named_when_its_source_is_first_served():
    settings = Settings.from_env({"KHOOK_WEBHOOK_ALLOW_UNAUTHENTICATED": "maybe"})
    with pytest.raises(ConfigError, match="KHOOK_WEBHOOK_ALLOW_UNAUTHENTICATED: "):
        credentials_for(settings, "webhook")


def test_a_group_is_read_once_per_tree():
    settings = Settings.from_env({"KHOOK_WEBHOOK_TOKEN": "tok"})
    assert credentials_for(settings, "webhook") is credentials_for(settings, "webhook")


def test_the_tree_keeps_the_environment_it_was_read_from_and_never_prints_it():
    environ = {"KHOOK_STATE": "memory", "RECEIVER_TOKEN": "s3cret"}
    settings = Settings.from_env(environ)
    environ["RECEIVER_TOKEN"] = "changed"
    assert settings.environ["RECEIVER_TOKEN"] == "s3cret"
    assert "s3cret" not in repr(settings)
    assert Settings(state="memory").environ == {}


def test_the_log_format_defaults_to_json_on_cloud_run_only():
    assert Settings.from_env({}).log_format == "text"
    assert Settings.from_env({"K_SERVICE": "khook-kafka"}).log_format == "json"
    assert Settings.from_env({"K_SERVICE": "k", "KHOOK_LOG_FORMAT": "text"}).log_format == "text"


def test_the_dispatcher_gets_its_group_and_the_environment_hooks_name():
    settings = Settings.from_env(
        {"KAGENT_API_URL": "http://kagent.example:8083", "RECEIVER_TOKEN": "tok-1"}
    )
    dispatcher = build_dispatcher(settings)
    try:
        assert isinstance(dispatcher, RoutingDispatcher)
        assert dispatcher.settings is settings.dispatchers
        assert dispatcher.webhook.environ["RECEIVER_TOKEN"] == "tok-1"
    finally:
        dispatcher.close()
