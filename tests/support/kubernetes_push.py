"""The kubernetes function as the redelivery tests drive it: one restart hook sending to the
a2a-sdk test agent, and Pub/Sub push bodies carrying a Kubernetes Event and its delivery attempt.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.a2a_agent import TestAgent
from tests.support.configdir import make_config, restart_hook

TOPIC = "/projects/p1/topics/khook-kubernetes"


def push(event: dict[str, Any], message_id: str, attempt: int) -> dict[str, Any]:
    return {
        "message": {
            "data": base64.b64encode(json.dumps(event).encode()).decode(),
            "messageId": message_id,
            "attributes": {"khook.source": "kubernetes", "khook.api": "events.k8s.io/v1"},
        },
        "subscription": "projects/p1/subscriptions/khook-kubernetes-push",
        "deliveryAttempt": attempt,
    }


def restart_hook_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, agent: TestAgent, **env: str
) -> None:
    """The function's environment: ``restart_hook()`` sending to ``agent``, plus ``env``."""
    monkeypatch.setenv("KHOOK_CONFIG_DIR", str(make_config(tmp_path, restart_hook())))
    monkeypatch.setenv("KAGENT_API_URL", agent.base_url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
