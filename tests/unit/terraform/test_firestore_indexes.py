"""Terraform creates the composite indexes the console's Firestore queries need.

The emulator needs no index, so a missing one shows only in production, as a
FAILED_PRECONDITION on the first console request using that filter: this test ties the
indexes in terraform/firestore.tf to the fields ``FiringFilter`` filters on and to the
collections the Firestore store queries.
"""

from __future__ import annotations

from datetime import UTC, datetime

from khook_core.state import firestore
from khook_core.state.base import FiringFilter
from tests.support.terraform import TerraformConfig, first

EVERY_FILTER = FiringFilter(
    since=datetime(2026, 1, 1, tzinfo=UTC),
    hook="h",
    source="s",
    event_type="t",
    resource="r",
    outcome="o",
    incident="i",
)


def indexes(tf: TerraformConfig) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """(collection, ((field, order), ...)) of every index, the for_each ones expanded."""
    found: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for name, index in tf.of_type("google_firestore_index").items():
        if name == "console_firings":
            assert index["for_each"] == "${local.console_firing_indexes}"
            fields = tf.locals["console_filter_fields"]
            for field in fields:
                for order in ("DESCENDING", "ASCENDING"):
                    if field == "hook" and order == "DESCENDING":
                        continue  # firings_by_hook
                    found.add((index["collection"], ((field, "ASCENDING"), ("at", order))))
            continue
        blocks = index["fields"]
        found.add((index["collection"], tuple((b["field_path"], b["order"]) for b in blocks)))
    return found


def test_every_console_filter_field_has_a_page_and_a_range_index(tf: TerraformConfig):
    assert set(tf.locals["console_filter_fields"]) == set(EVERY_FILTER.equalities())
    found = indexes(tf)
    for field in EVERY_FILTER.equalities():
        for order in ("DESCENDING", "ASCENDING"):  # a page, newest first; a count's range
            assert (firestore.FIRINGS, ((field, "ASCENDING"), ("at", order))) in found, (
                field,
                order,
            )


def test_the_for_each_skips_only_the_index_firings_by_hook_already_creates(tf: TerraformConfig):
    by_hook = tf.of_type("google_firestore_index")["firings_by_hook"]
    assert [(f["field_path"], f["order"]) for f in by_hook["fields"]] == [
        ("hook", "ASCENDING"),
        ("at", "DESCENDING"),
    ]
    assert 'if field != "hook"' in tf.locals["console_firing_indexes"]


def test_the_pending_backlogs_query_has_its_index(tf: TerraformConfig):
    index = tf.of_type("google_firestore_index")["pending_backlogs"]
    assert index["collection"] == firestore.BACKLOG
    assert [(f["field_path"], f["order"]) for f in index["fields"]] == [
        ("pending", "ASCENDING"),
        ("key", "ASCENDING"),
    ]
    assert first(index["fields"][0])["field_path"] == "pending"
