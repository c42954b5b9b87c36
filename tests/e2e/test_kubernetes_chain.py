"""The whole Kubernetes chain across real processes.

test API server → ``khook-forwarder`` process → Pub/Sub emulator → push subscription →
functions-framework serving ``functions/kubernetes`` (dry-run dispatch, SQLite state) → the
audit trail. A poison message published straight to the topic is acknowledged once and never
comes back.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.configdir import make_config, restart_hook
from tests.support.forwarder import REPO, ForwarderProcess
from tests.support.functions import FunctionServer
from tests.support.kube_api import FakeKubeApi
from tests.support.pubsub import PubSubEmulator

HOOK = restart_hook()
REDELIVERY_WATCH_S = 3.0
"""A nacked push is retried after the subscription's 1-2 s backoff; watching this long for a
second delivery of the poison message is the only way to show it does not come back."""


def firings(db: Path) -> list[dict[str, Any]]:
    """The audit trail, read with the ``khook firings`` command as an operator would."""
    done = subprocess.run(
        [sys.executable, "-m", "khook_core.cli", "firings", "--state", f"sqlite:{db}", "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_a_crashlooping_pod_reaches_the_agent_once_and_poison_is_dropped(
    tmp_path: Path,
    pubsub_emulator: PubSubEmulator,
    kube_api: FakeKubeApi,
    function_server: Callable[..., FunctionServer],
    wait_until: Callable[..., None],
):
    config = make_config(tmp_path, HOOK)
    db = tmp_path / "state.db"
    function = function_server(
        "kubernetes",
        env={
            "KHOOK_CONFIG_DIR": str(config),
            "KHOOK_STATE": f"sqlite:{db}",
            "KHOOK_DISPATCH": "dry-run",
            "KHOOK_LOG_FORMAT": "json",
        },
    )
    topic = pubsub_emulator.create_topic()
    dead_letters = pubsub_emulator.create_topic()
    dead_letter_sub = pubsub_emulator.create_subscription(dead_letters)
    pubsub_emulator.create_subscription(
        topic,
        push_endpoint=f"{function.url}/{pubsub_emulator.topic_path(topic)}",
        dead_letter_topic=dead_letters,
        max_delivery_attempts=5,
    )
    forwarder = ForwarderProcess(
        tmp_path / "forwarder.log",
        {
            "KHOOK_FORWARDER_KUBE_API_URL": kube_api.url,
            "PUBSUB_EMULATOR_HOST": pubsub_emulator.host,
            "KHOOK_TOPIC": topic,
            "GOOGLE_CLOUD_PROJECT": pubsub_emulator.project,
            "KHOOK_CLUSTER": "e2e",
            "KHOOK_CONFIG_DIR": str(config),
        },
    )
    try:
        wait_until(forwarder.ready, timeout=30, what="forwarder ready")

        pod_event = kube_api.create(
            "BackOff",
            "Back-off restarting failed container app",
            namespace="shop",
            object_name="web-0",
        )
        kube_api.create("Pulled", "Successfully pulled image", type_="Normal", namespace="shop")
        wait_until(lambda: len(firings(db)) == 1, timeout=30, what="a recorded dispatch")
        [fired] = firings(db)
        assert fired["hook"] == "shop/shop-restarts"
        assert fired["outcome"] == "dispatched"
        assert fired["resource"] == "shop/Pod/web-0"
        [prompt_line] = function.wait_for_log(lambda r: r.get("prompt") is not None)
        assert "web-0" in prompt_line["prompt"]
        assert forwarder.metric("events_filtered_total", '{reason="normal"}') == 1

        # The kubelet repeats the back-off: forwarded again, deduplicated by the function.
        kube_api.repeat(pod_event)
        function.wait_for_log(lambda r: "duplicate" in r.get("message", ""))
        assert len(firings(db)) == 1

        poison_id = pubsub_emulator.publish(topic, b"\x00 not an event", {"khook.source": "x"})

        def poison(record: dict[str, Any]) -> bool:
            labels = record.get("logging.googleapis.com/labels") or {}
            return labels.get("pubsub_message_id") == poison_id and record["message"].startswith(
                "acknowledging invalid"
            )

        function.wait_for_log(poison)
        seen_at = time.monotonic()
        while time.monotonic() - seen_at < REDELIVERY_WATCH_S:
            assert len([r for r in function.records() if poison(r)]) == 1, "redelivered"
            time.sleep(0.1)
        assert pubsub_emulator.pull(dead_letter_sub) == []
    finally:
        assert forwarder.stop() == 0
