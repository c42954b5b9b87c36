"""The configuration shown in docs/sources.md loads, so a copy-paste works."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from khook_core.runtime import load_config
from tests.support.paths import REPO

DOC = (REPO / "docs" / "sources.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", DOC, flags=re.DOTALL)


def blocks(language: str, marker: str) -> list[str]:
    return [text for lang, text in BLOCKS if lang == language and marker in text]


@pytest.mark.parametrize("plugins", blocks("yaml", "plugins:"))
def test_every_plugins_example_validates(plugins: str, source_config: Callable[..., Path]) -> None:
    config = load_config(source_config(plugins=plugins))
    for entry in config.plugins.entries:
        assert config.sources.get(entry) is not None


def test_every_hook_example_loads(source_config: Callable[..., Path]) -> None:
    hooks = blocks("yaml", "kind: Hook")
    assert len(hooks) >= 2
    config = load_config(source_config(hooks="---\n".join(hooks)))
    assert {"monitoring/alerts", "data/jobs"} <= set(config.hooks.hooks())


def test_sender_configurations_parse() -> None:
    [connector] = blocks("json", "CloudPubSubSinkConnector")
    assert json.loads(connector)["config"]["metadata.publish"] == "true"
    alertmanager = [yaml.safe_load(b) for b in blocks("yaml", "webhook_configs")]
    assert alertmanager[0]["receivers"][0]["webhook_configs"][0]["send_resolved"] is True
    [properties] = blocks("properties", "debezium.sink.type")
    assert "debezium.sink.type=pubsub" in properties
