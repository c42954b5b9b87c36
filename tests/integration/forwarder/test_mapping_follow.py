"""The forwarder's pre-filter follows the live configuration's mapping table, not only the
files it was deployed with: a row published to the store reaches the cluster without a restart.

The whole forwarder runs against the project's watch-protocol test server, publishing to a
recording Pub/Sub client; the live configuration is a real SQLite store, published as
``khook config push`` publishes it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from khook_core.event import utcnow
from khook_core.forwarder.config import ForwarderSettings
from khook_core.liveconfig import publishing, snapshot
from khook_core.state.config_sqlite import SqliteConfigStore
from tests.support.forwarder import REPO, TOPIC, RecordingClient, started_forwarders
from tests.support.kube_api import FakeKubeApi

MAPPINGS = "event-mappings.yaml"


def deployed_config(tmp_path: Path) -> Path:
    """The project's config, but with pod-restart disabled: what the forwarder starts with."""
    config = tmp_path / "deployed"
    shutil.copytree(REPO / "config", config)
    text = (config / MAPPINGS).read_text()
    row = 'eventType: "pod-restart"'
    head, tail = text.split(row, 1)
    (config / MAPPINGS).write_text(head + row + tail.replace("enabled: true", "enabled: false", 1))
    return config


def forwarded(client: RecordingClient) -> list[str]:
    return [json.loads(data)["metadata"]["name"] for data, _ in client.accepted]


def test_a_mapping_row_published_to_the_store_reaches_the_pre_filter(
    kube_api: FakeKubeApi, tmp_path: Path, wait_until: Callable[..., None]
):
    state = tmp_path / "state.db"
    settings = ForwarderSettings(
        kube_api_url=kube_api.url,
        topic=TOPIC,
        port=0,
        host="127.0.0.1",
        config_dir=deployed_config(tmp_path),
        hooks_state=f"sqlite:{state}",
        config_refresh_seconds=0.1,
        status_interval_seconds=0.1,
        backoff_initial_seconds=0.05,
        backoff_max_seconds=0.2,
    )
    client = RecordingClient()
    store = SqliteConfigStore(state)
    try:
        with started_forwarders() as start:
            forwarder = start(settings, client)
            wait_until(forwarder.ready, what="the first list")
            kube_api.create(object_name="before")
            wait_until(
                lambda: forwarder.metrics.filtered["disabled"] == 1,
                what="pod-restart filtered as disabled",
            )

            # a push of the project's own files: pod-restart enabled
            pushed = publishing.publish_files(
                snapshot.files_of(REPO / "config"), store, origin="push", label="push", now=utcnow()
            )
            wait_until(
                lambda: (
                    forwarder.mapping_follower is not None
                    and forwarder.mapping_follower.version == pushed.version
                ),
                what="the pre-filter to load the pushed version",
            )
            created = kube_api.create(object_name="after")
            wait_until(
                lambda: created["metadata"]["name"] in forwarded(client), what="the event forwarded"
            )

            # a snapshot the forwarder cannot load is refused; the last good one stays
            broken = {**snapshot.files_of(REPO / "config"), MAPPINGS: "mappings: [{]"}
            version = store.publish_config(
                files=broken, origin="push", hooks=0, digest="broken", now=utcnow()
            )
            follower = forwarder.mapping_follower
            assert follower is not None
            wait_until(lambda: follower.refused == version, what="the broken version refused")
            again = kube_api.create(object_name="still")
            wait_until(
                lambda: again["metadata"]["name"] in forwarded(client),
                what="still forwarded on the last good mapping",
            )
    finally:
        store.close()

    assert "before" not in "".join(forwarded(client))
