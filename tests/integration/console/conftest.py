"""One scenario per backend (SQLite, the Firestore emulator), written by real pipeline runs
with the real A2A test agent, and functions/console serving it under functions-framework."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.support.a2a_agent import TestAgent
from tests.support.console import Scenario, firestore_env, record_scenario, start_console
from tests.support.functions import FunctionServer


@pytest.fixture(scope="module", params=["sqlite", pytest.param("firestore")])
def scenario(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    a2a_agent_server: TestAgent,
) -> Iterator[Scenario]:
    tmp = tmp_path_factory.mktemp(f"console-{request.param}")
    with pytest.MonkeyPatch.context() as patch:
        if request.param == "sqlite":
            state, env = f"sqlite:{tmp / 'state.db'}", {}
        else:
            request.getfixturevalue("firestore_emulator")
            state, env = "firestore", firestore_env()
            for name, value in env.items():
                patch.setenv(name, value)
        a2a_agent_server.reset()
        yield record_scenario(
            tmp, agent_url=a2a_agent_server.url, state=state, env=env, now=datetime.now(UTC)
        )


@pytest.fixture(scope="module")
def console(
    scenario: Scenario, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FunctionServer]:
    server = start_console(tmp_path_factory.mktemp("console-log") / "console.log", scenario)
    try:
        yield server
    finally:
        server.stop()
