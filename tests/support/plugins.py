"""Third-party source plugins installed on disk, for the tests of discovery through entry points."""

from __future__ import annotations

from pathlib import Path

import pytest

KAFKA_BOGUS = "plugins:\n- name: kubernetes\n- name: kafka\n  config:\n    bogus: 1\n"
PLUGIN = """
from pydantic import BaseModel
from khook_core.event import Event, Resource, stable_id, utcnow

class PingConfig(BaseModel):
    greeting: str = "hi"

class PingSource:
    name = "ping"
    version = "2.1.0"
    event_types = ("ping-received",)
    config_model = PingConfig

    def __init__(self, config, context):
        self.config = config

    def normalize(self, raw, attributes):
        return [Event(id=stable_id("ping", raw), source="ping", type="ping-received",
                      message=self.config.greeting, timestamp=utcnow())]
"""


@pytest.fixture
def plugins_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two installed third-party distributions: one good, one whose module does not import."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "khook_ping.py").write_text(PLUGIN)
    for dist, entry in (
        ("khook_ping", "ping = khook_ping:PingSource"),
        ("khook_broken", "broken = khook_missing_module:Nope"),
    ):
        info = site / f"{dist}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[khook.sources]\n{entry}\n")
    monkeypatch.syspath_prepend(str(site))
    return site
