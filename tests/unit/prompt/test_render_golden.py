"""Renders of a varied corpus are byte for byte the pinned ones: a faster renderer must not
change a single prompt (``render_corpus`` says what the corpus covers)."""

from __future__ import annotations

import functools
import json

import pytest

from tests.unit.prompt import render_corpus

PINNED: dict[str, str] = json.loads(render_corpus.FIXTURE.read_text())


@functools.cache
def rendered() -> dict[str, str]:
    return render_corpus.renders()


def test_the_corpus_is_the_pinned_one():
    assert sorted(rendered()) == sorted(PINNED)


@pytest.mark.parametrize("name", sorted(PINNED))
def test_render_is_byte_for_byte_the_pinned_one(name: str):
    assert rendered()[name] == PINNED[name]
