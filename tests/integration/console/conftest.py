"""One scenario per backend (SQLite, the Firestore emulator), written by real pipeline runs
with the real A2A test agent, and functions/console serving it under functions-framework."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from khook_core import correlation
from khook_core.pipeline import run_pipeline
from khook_core.runtime import Runtime
from khook_core.settings import Settings
from tests.support.a2a_agent import TestAgent
from tests.support.configdir import make_config
from tests.support.console import Scenario, firestore_env, record_scenario, start_console
from tests.support.functions import FunctionServer
from tests.support.incidents import CHECKOUT, PLUGINS, backoff, crash_looping, hooks


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


CART = "shop/Deployment/cart"


@dataclass
class BadDeploy:
    """The incidents' ids, and the task ids of the runs they opened."""

    checkout: str
    cart: str
    task_ids: list[str]


@pytest.fixture(scope="module")
def bad_deploy(
    scenario: Scenario, tmp_path_factory: pytest.TempPathFactory, a2a_agent_server: TestAgent
) -> BadDeploy:
    config = make_config(tmp_path_factory.mktemp("incidents"), hooks("1m"), plugins=PLUGINS)
    settings = Settings.from_env(
        {
            "KHOOK_CONFIG_DIR": str(config),
            "KHOOK_STATE": scenario.state,
            "KAGENT_API_URL": a2a_agent_server.base_url,
        }
    )
    now = datetime.now(UTC).replace(microsecond=0)
    clock = [now - timedelta(minutes=30)]
    runtime = Runtime.build(settings, clock=lambda: clock[0])

    def at(minutes_ago: float) -> None:
        clock[0] = now - timedelta(minutes=minutes_ago)

    try:
        at(30)
        [cart] = run_pipeline(
            "kubernetes", backoff("cart-5c6b7d8f9-q8z9w", 1, clock[0]), {}, runtime=runtime
        )
        at(5)
        [opened] = run_pipeline("alertmanager", crash_looping(clock[0]), {}, runtime=runtime)
        at(4)
        run_pipeline(
            "kubernetes", backoff("checkout-7d9f8-x2x4q", 1, clock[0]), {}, runtime=runtime
        )
        at(3)
        run_pipeline(
            "kubernetes", backoff("checkout-7d9f8-b7k2m", 1, clock[0]), {}, runtime=runtime
        )
        at(0)
        # The sweep's incident part (its backlog part would drop the scenario's held restarts,
        # whose hook this configuration lacks): closes cart (quiet), sends checkout's follow-up.
        swept = correlation.follow_ups(runtime)
        ids = {i.workload: i.id for i in runtime.incidents.incidents()}
    finally:
        runtime.close()
    assert (cart.decision, opened.decision) == ("opened:incident", "opened:incident")
    assert [d.decision for d in swept] == ["follow-up"]
    return BadDeploy(
        checkout=ids[CHECKOUT],
        cart=ids[CART],
        task_ids=[d.task_id for d in (cart, opened) if d.task_id],
    )
