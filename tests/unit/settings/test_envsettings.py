from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import AliasChoices, Field

from khook_core.envsettings import EnvSettings
from khook_core.errors import ConfigError
from khook_core.settings import DEFAULT_STATE, Settings


class Example(EnvSettings):
    name: str = "x"
    count: int = 1
    headers: dict[str, str] = Field(default_factory=dict)
    tags: list[str] | None = None
    url: str = Field(default="u", validation_alias=AliasChoices("NEW_URL", "OLD_URL"))


def test_fields_are_read_from_prefixed_upper_case_variables():
    got = Example.from_env({"KHOOK_NAME": "web", "KHOOK_COUNT": "7", "OTHER": "ignored"})
    assert (got.name, got.count) == ("web", 7)


def test_a_custom_prefix_and_aliases_in_order_of_preference():
    assert Example.from_env({"APP_NAME": "a"}, prefix="APP_").name == "a"
    assert Example.from_env({"OLD_URL": "old"}).url == "old"
    assert Example.from_env({"OLD_URL": "old", "NEW_URL": "new"}).url == "new"


def test_lists_and_mappings_are_json():
    got = Example.from_env({"KHOOK_HEADERS": '{"X-A": "1"}', "KHOOK_TAGS": '["a", "b"]'})
    assert got.headers == {"X-A": "1"}
    assert got.tags == ["a", "b"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KHOOK_COUNT": "many"}, "KHOOK_COUNT: Input should be a valid integer"),
        ({"KHOOK_HEADERS": "{not json"}, "KHOOK_HEADERS: not valid JSON"),
        ({"OLD_URL": 5}, "OLD_URL: Input should be a valid string"),
    ],
)
def test_invalid_values_name_the_variable(env: dict[str, str], message: str):
    with pytest.raises(ConfigError) as info:
        Example.from_env(env)
    assert message in str(info.value)


def test_settings_defaults_and_overrides():
    default = Settings.from_env({})
    assert default.config_dir == Path("config")
    assert default.state == DEFAULT_STATE
    assert default.dispatch == "auto"
    custom = Settings.from_env(
        {
            "KHOOK_STATE": "memory",
            "KHOOK_DISPATCH": "dry-run",
            "KHOOK_DEDUP_WINDOW": "30",
            "KHOOK_LOG_FORMAT": "json",
        }
    )
    assert (custom.state, custom.dispatch, custom.dedup_window, custom.log_format) == (
        "memory",
        "dry-run",
        30,
        "json",
    )
    with pytest.raises(ConfigError, match="KHOOK_DISPATCH"):
        Settings.from_env({"KHOOK_DISPATCH": "sometimes"})
