"""The README's configuration table names every environment variable the code reads."""

from __future__ import annotations

import pytest

from khook_core.dispatch.settings import DispatchSettings
from khook_core.envsettings import EnvSettings, env_names
from khook_core.settings import Settings
from khook_core.transport.http import HttpCredentials
from tests.support.paths import REPO

README = (REPO / "README.md").read_text()


@pytest.mark.parametrize(
    ("settings", "prefix"),
    [(Settings, "KHOOK_"), (DispatchSettings, "KHOOK_"), (HttpCredentials, "KHOOK_<SOURCE>_")],
)
def test_every_setting_is_in_the_readme_table(settings: type[EnvSettings], prefix: str):
    for name, info in settings.model_fields.items():
        variables = env_names(name, info, prefix)
        if settings is HttpCredentials and name != "allow_unauthenticated":
            # Documented per source: KHOOK_ALERTMANAGER_TOKEN, KHOOK_WEBHOOK_HMAC_SECRET, ...
            assert any(
                f"`KHOOK_{s}_{name.upper()}`" in README for s in ("ALERTMANAGER", "WEBHOOK")
            ), name
            continue
        assert any(f"`{v}`" in README for v in variables), (name, variables)
