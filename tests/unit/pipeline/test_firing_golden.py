"""Every output of a firing stream (decisions, dispatch requests, audit records) is byte for
byte the pinned one: a faster firing path must not change what it sends or records
(``firing_corpus`` says what the stream covers)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.pipeline import firing_corpus


def test_every_output_is_the_pinned_one(tmp_path: Path):
    pinned = json.loads(firing_corpus.FIXTURE.read_text())
    got = json.loads(json.dumps(firing_corpus.outputs(tmp_path)))
    assert len(got) == len(pinned)
    for delivery, (mine, expected) in enumerate(zip(got, pinned, strict=True)):
        assert mine == expected, f"delivery {delivery}"
