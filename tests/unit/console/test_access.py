"""Who may read the console: loopback clients unless allowed, and the optional bearer token."""

from __future__ import annotations

import flask
import pytest
from pydantic import SecretStr

from khook_core.console import api
from khook_core.runtime import Runtime
from khook_core.settings import ConsoleSettings

APP = flask.Flask(__name__)


def no_runtime() -> Runtime:
    raise AssertionError("must not be called: the request is refused before the store")


def answer(
    path: str, *, remote: str, settings: ConsoleSettings, headers: dict[str, str] | None = None
) -> flask.Response:
    with APP.test_request_context(
        path, environ_base={"REMOTE_ADDR": remote}, headers=headers or {}
    ):
        return api.serve(flask.request, no_runtime, settings)


@pytest.mark.parametrize("remote", ["203.0.113.9", "10.0.0.4", "::ffff:10.0.0.4", "", "bogus"])
@pytest.mark.parametrize("path", ["/", "/assets/dashboard.js", "/api/v1/firings"])
def test_clients_from_other_hosts_are_refused_403_by_default(remote: str, path: str):
    response = answer(path, remote=remote, settings=ConsoleSettings())
    assert response.status_code == 403
    assert response.get_json() == {
        "error": response.get_json()["error"],
        "status": 403,
        "field": "client",
    }
    assert "KHOOK_CONSOLE_ALLOW_REMOTE" in response.get_json()["error"]


@pytest.mark.parametrize("remote", ["127.0.0.1", "127.8.9.1", "::1", "::ffff:127.0.0.1"])
def test_loopback_clients_get_the_page(remote: str):
    response = answer("/", remote=remote, settings=ConsoleSettings())
    assert response.status_code == 200
    assert b"khook console" in response.get_data()


def test_allow_remote_lets_other_hosts_reach_the_page_but_not_the_api_without_the_token():
    settings = ConsoleSettings(allow_remote=True, token=SecretStr("t0ken"))
    assert answer("/", remote="203.0.113.9", settings=settings).status_code == 200
    refused = answer("/api/v1/hooks", remote="203.0.113.9", settings=settings)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == 'Bearer realm="khook console"'
    wrong = answer(
        "/api/v1/hooks",
        remote="203.0.113.9",
        settings=settings,
        headers={"Authorization": "Bearer t0ken-not"},
    )
    assert (wrong.status_code, wrong.get_json()["field"]) == (403, "authorization")
    basic = answer(
        "/api/v1/hooks", remote="127.0.0.1", settings=settings, headers={"Authorization": "Basic x"}
    )
    assert basic.status_code == 401


def test_settings_come_from_the_environment_with_their_prefix():
    settings = ConsoleSettings.from_env(
        {"KHOOK_CONSOLE_TOKEN": "abc", "KHOOK_CONSOLE_ALLOW_REMOTE": "true"}
    )
    assert settings.token is not None
    assert settings.token.get_secret_value() == "abc"
    assert settings.allow_remote is True
    assert ConsoleSettings.from_env({}).token is None
