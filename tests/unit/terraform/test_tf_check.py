"""The offline schema check's walk, on synthetic schemas (the real schema: tests/integration)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tests.support.terraform import load_script

tf_schema = load_script("tf_schema")
tf_check = load_script("tf_check")


def block(attributes: Iterable[str], required: Iterable[str] = (), **blocks: Any) -> Any:
    return tf_schema.BlockSchema(frozenset(attributes), frozenset(required), blocks)


SUBSCRIPTION = block(
    {"name", "topic"},
    {"name", "topic"},
    push_config=block({"push_endpoint"}, {"push_endpoint"}, oidc_token=block({"audience"})),
)


def messages(body: dict[str, Any]) -> list[str]:
    return list(tf_check.check_block(body, SUBSCRIPTION, tf_check.META_ARGUMENTS["resource"]))


def test_known_names_and_meta_arguments_pass() -> None:
    body = {
        "name": "n",
        "topic": "t",
        "for_each": "${local.x}",
        "lifecycle": [{}],
        "push_config": [{"push_endpoint": "https://x", "oidc_token": [{"audience": "a"}]}],
    }
    assert messages(body) == []


def test_unknown_nested_argument_is_reported_with_a_suggestion() -> None:
    body = {"name": "n", "topic": "t", "push_config": [{"push_endpoint": "e", "oidc_tokn": [{}]}]}
    assert messages(body) == ["unknown argument push_config.oidc_tokn (did you mean oidc_token?)"]


def test_missing_required_arguments_are_reported_at_every_level() -> None:
    body = {"name": "n", "push_config": [{}]}
    assert messages(body) == [
        "missing required argument push_config.push_endpoint",
        "missing required argument topic",
    ]


def test_dynamic_blocks_are_checked_like_static_ones() -> None:
    body = {
        "name": "n",
        "topic": "t",
        "dynamic": [{"push_config": {"for_each": "${x}", "content": [{"push_endpont": "e"}]}}],
    }
    assert messages(body) == [
        "unknown argument push_config.push_endpont (did you mean push_endpoint?)",
        "missing required argument push_config.push_endpoint",
    ]
