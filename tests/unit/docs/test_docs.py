"""The README's configuration table names every environment variable the code reads."""

from __future__ import annotations

import pytest

from khook_core.envsettings import EnvSettings, env_names, nested_group
from khook_core.settings import (
    ConsoleSettings,
    DispatchSettings,
    FirestoreSettings,
    Settings,
    TelemetrySettings,
    TrackingSettings,
)
from khook_core.transport.http import HttpCredentials
from tests.support.paths import REPO

README = (REPO / "README.md").read_text()


GROUPS: list[tuple[type[EnvSettings], str]] = [
    (Settings, "KHOOK_"),
    (DispatchSettings, "KHOOK_"),
    (FirestoreSettings, "KHOOK_"),
    (ConsoleSettings, "KHOOK_CONSOLE_"),
    (TrackingSettings, "KHOOK_TRACK_"),
    (TelemetrySettings, "KHOOK_TELEMETRY_"),
    (HttpCredentials, "KHOOK_<SOURCE>_"),
]


def test_every_nested_group_of_the_settings_tree_is_checked_below():
    nested = {nested_group(info) for info in Settings.model_fields.values()} - {None}
    assert nested <= {group for group, _ in GROUPS}


@pytest.mark.parametrize(("settings", "prefix"), GROUPS)
def test_every_setting_is_in_the_readme_table(settings: type[EnvSettings], prefix: str):
    for name, info in settings.model_fields.items():
        if nested_group(info) is not None:
            continue  # a nested group: its own fields are checked with it
        variables = env_names(name, info, prefix)
        if settings is HttpCredentials and name != "allow_unauthenticated":
            # Documented per source: KHOOK_ALERTMANAGER_TOKEN, KHOOK_WEBHOOK_HMAC_SECRET, ...
            assert any(
                f"`KHOOK_{s}_{name.upper()}`" in README for s in ("ALERTMANAGER", "WEBHOOK")
            ), name
            continue
        assert any(f"`{v}`" in README for v in variables), (name, variables)
