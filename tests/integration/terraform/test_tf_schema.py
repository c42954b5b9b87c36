"""The offline schema check end to end with the real provider schema (downloaded once with npm)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.paths import REPO
from tests.support.terraform import TERRAFORM, load_script, skip_or_fail

tf_schema = load_script("tf_schema")
tf_check = load_script("tf_check")
BAD_FIXTURE = REPO / "tests" / "data" / "terraform" / "bad"


@pytest.fixture(scope="module")
def schema_cache() -> Path:
    """The real derived schema (downloads @cdktf/provider-google once with npm)."""
    try:
        tf_schema.load_schema([("resource", "google_pubsub_topic")])
    except tf_schema.SchemaUnavailableError as exc:
        skip_or_fail(f"provider schema unavailable: {exc}")
    cache: Path = tf_schema.DEFAULT_CACHE_DIR
    return cache


def test_bad_fixture_fails_with_file_resource_and_attribute(
    schema_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert tf_check.main([str(BAD_FIXTURE), "--cache-dir", str(schema_cache)]) == 1
    out = capsys.readouterr().out
    where = BAD_FIXTURE / "main.tf"
    expected = [
        f"{where}:3: google_cloudfunctions2_function.typo: missing required argument location",
        f"{where}:3: google_cloudfunctions2_function.typo: unknown argument "
        "event_trigger.trigger_regoin (did you mean trigger_region?)",
        f"{where}:13: google_firestore_field.ttl: missing required argument field",
        f"{where}:13: google_firestore_field.ttl: unknown argument field_path",
        f"{where}:13: google_firestore_field.ttl: unknown argument ttl_config.state",
        f"{where}:22: google_pubsub_subscription.push: unknown argument "
        "dead_letter_policy.max_delivery_attempt (did you mean max_delivery_attempts?)",
        f"{where}:22: google_pubsub_subscription.push: missing required argument "
        "push_config.push_endpoint",
        f"{where}:22: google_pubsub_subscription.push: missing required argument "
        "push_config.oidc_token.service_account_email",
        f"{where}:40: google_pubsub_topicc.typo: unknown resource type "
        "(did you mean google_pubsub_topic?)",
    ]
    for line in expected:
        assert line in out.splitlines(), f"missing: {line}\n--- output ---\n{out}"
    assert "random_id" not in out  # other providers are not checked
    assert len(out.splitlines()) == len(expected)


def test_terraform_directory_passes(schema_cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert tf_check.main([str(TERRAFORM), "--cache-dir", str(schema_cache)]) == 0, (
        capsys.readouterr().out
    )


def test_derived_cache_is_reused_without_the_package(schema_cache: Path, tmp_path: Path) -> None:
    derived = schema_cache / tf_schema.DERIVED
    (tmp_path / tf_schema.DERIVED).write_bytes(derived.read_bytes())
    wanted = [("resource", "google_pubsub_topic"), ("resource", "google_no_such_thing")]
    schema = tf_schema.load_schema(wanted, tmp_path)  # no tarball in tmp_path: must not fetch
    assert schema.lookup("resource", "google_pubsub_topic").allows("message_retention_duration")
    assert schema.lookup("resource", "google_no_such_thing") is None
