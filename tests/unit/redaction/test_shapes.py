"""``khook validate`` rejects a ``redact:`` path that cannot match its source's events, for
every source with a fixed shape; and the shapes it checks against are the ones the sources
really make (every metadata path of every bundled sample is accepted)."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from khook_core.cli.replay import read_payloads
from khook_core.redaction.rules import NO_TAGS, SHAPES, RedactRules
from khook_core.runtime import Clock, load_config
from khook_core.sources.base import Dropped
from tests.support.paths import REPO
from tests.support.sources import SAMPLES

NOW = datetime(2026, 1, 5, 10, 35, tzinfo=UTC)
PLUGINS = """\
plugins:
  - name: kubernetes
    config: {freshnessMinutes: 100000000}
  - name: kafka
    config: {requireMetadata: false}
"""


def leaf_paths(value: Any, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from leaf_paths(item, (*path, str(key)))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from leaf_paths(item, (*path, str(index)))
    else:
        yield path


@pytest.fixture(scope="module")
def sample_events(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Any]]:
    root = tmp_path_factory.mktemp("config") / "config"
    shutil.copytree(REPO / "config", root)
    (root / "plugins.yaml").write_text(PLUGINS)
    loaded = load_config(root, clock=Clock(NOW))
    events: dict[str, list[Any]] = {}
    for path in sorted(SAMPLES.glob("*/*")):
        source = loaded.sources.get(path.parent.name)
        with path.open(encoding="utf-8") as handle:
            for payload in read_payloads(handle):
                with contextlib.suppress(Dropped):
                    events.setdefault(path.parent.name, []).extend(source.normalize(payload, {}))
    return events


@pytest.mark.parametrize("source", sorted(SHAPES))
def test_every_metadata_path_of_the_samples_fits_the_source_shape(
    source: str, sample_events: dict[str, list[Any]]
) -> None:
    events = sample_events[source]
    assert events
    for event in events:
        if source in NO_TAGS:
            assert event.tags == {}
        paths = {".".join(p) for p in leaf_paths(event.metadata, ("metadata",)) if len(p) > 1}
        paths |= {f"tags.{key}" for key in event.tags}
        assert RedactRules(mask=sorted(paths)).problems_for(source) == [], event.id


@pytest.mark.parametrize(
    ("source", "path", "says"),
    [
        ("kubernetes", "metadata.annotations", "kubernetes events carry metadata.{"),
        ("kubernetes", "metadata.fieldPath.x", "is a value; the path goes deeper"),
        ("kubernetes", "tags.team", "carry no tags when redaction runs"),
        ("alertmanager", "metadata.labels.team", "alertmanager events carry metadata.{"),
        ("alertmanager", "metadata.annotations.summary.text", "is a flat map"),
        ("alertmanager", "metadata.fingerprint.x", "is a value"),
        ("gcp", "metadata.build.id", "gcp events carry metadata.{"),
        ("gcp", "metadata.resource_labels.a.b", "is a flat map"),
        ("kafka", "metadata.kafka.key.x", "is a flat map"),
        ("cdc", "metadata.cdc.op.x", "is a flat map"),
    ],
)
def test_a_path_the_source_never_makes_is_rejected(source: str, path: str, says: str) -> None:
    [problem] = RedactRules(mask=[path]).problems_for(source)
    assert says in problem
    assert path in problem


@pytest.mark.parametrize(
    ("source", "path"),
    [
        ("kubernetes", "metadata.reportingInstance"),
        ("alertmanager", "metadata.annotations.*"),
        ("alertmanager", "metadata.*"),
        ("alertmanager", "tags.instance"),
        ("gcp", "metadata.workload.owner.name"),
        ("kafka", "metadata.record.user.card.number"),
        ("cdc", "metadata.after.password_hash"),
        ("cdc", "metadata.*.email"),
        ("webhook", "metadata.anything.at.all"),
        ("kafka", "metadata.maxLag.client_id"),  # a preset's own key (Burrow)
        ("cdc", "metadata.customer.email"),  # a table rule's own key
    ],
)
def test_a_path_that_fits_the_source_is_accepted(source: str, path: str) -> None:
    assert RedactRules(mask=[path]).problems_for(source) == []


def test_a_tag_path_deeper_than_a_tag_is_rejected_for_every_source() -> None:
    with pytest.raises(ValueError, match=r"tags\.<key> is as deep as tags go"):
        RedactRules(mask=["tags.team.name"])
