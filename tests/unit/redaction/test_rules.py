"""Fields masked on purpose: a source's ``redact:`` rules in plugins.yaml, the CDC column
defaults, opt-in personal data, and what ``khook validate`` and ``khook replay --explain`` say."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from khook_core import cli
from khook_core.errors import ConfigError
from khook_core.event import Event
from khook_core.redaction.redactor import Finding, MaskCount, Redactor
from khook_core.redaction.rules import RedactRules
from khook_core.sources.registry import PluginSettings

KEY = b"r" * 32
NOW = datetime(2026, 1, 5, 10, 35, tzinfo=UTC)


def event(source: str = "webhook", **fields: Any) -> Event:
    return Event(id=f"{source}:1", source=source, type="x", timestamp=NOW, **fields)


def rules(source: str, **block: Any) -> Redactor:
    return Redactor(KEY, {source: RedactRules.model_validate(block)})


def test_mask_and_drop_paths_with_wildcards() -> None:
    redactor = rules(
        "webhook",
        mask=["metadata.customer.*", "tags.owner"],
        drop=["metadata.debug", "metadata.items.*.raw"],
    )
    before = event(
        tags={"owner": "alice", "team": "shop"},
        metadata={
            "customer": {"name": "Alice", "plan": "gold"},
            "debug": {"dump": "x"},
            "items": [{"raw": "r1", "id": 1}, {"raw": "r2", "id": 2}],
        },
    )

    after, found = redactor.explain(before)

    assert after.tags["team"] == "shop"
    assert after.tags["owner"].startswith("[redacted:field:")
    assert after.metadata["customer"]["name"].startswith("[redacted:field:")
    assert after.metadata["customer"]["plan"].startswith("[redacted:field:")
    assert "debug" not in after.metadata
    assert after.metadata["items"] == [{"id": 1}, {"id": 2}]
    assert Finding("dropped", "metadata.debug") in found
    assert Finding("field", "tags.owner") in found


def test_cdc_columns_named_like_secrets_are_masked_unless_allowed() -> None:
    row = {
        "id": 7,
        "status": "failed",
        "password_hash": "$2b$12$abc",
        "ssn": "078-05-1120",
        "card_number": "4111111111111111",
        "iban": "DE89370400440532013000",
        "api_token": "t0k3n",
        "tokens_used": 12,
    }
    plain = Redactor(KEY).explain(
        event(
            "cdc",
            tags={"schema": "public", "table": "users"},
            metadata={"before": dict(row), "after": dict(row)},
        )
    )[0]
    allowed = rules("cdc", tables={"public.users": {"allow": ["id", "status", "tokens_used"]}})
    listed = allowed.explain(
        event(
            "cdc",
            tags={"schema": "public", "table": "users"},
            metadata={"before": dict(row), "after": dict(row)},
        )
    )[0]

    for image in (plain.metadata["after"], listed.metadata["after"]):
        assert image["id"] == 7
        assert image["status"] == "failed"
        for column in ("password_hash", "ssn", "card_number", "iban", "api_token"):
            assert image[column].startswith("[redacted:column:"), column
    assert plain.metadata["after"]["tokens_used"] != 12  # "token" in the name: masked
    assert listed.metadata["after"]["tokens_used"] == 12  # unless the table allows it


def test_a_cdc_deny_list_masks_the_columns_it_names() -> None:
    redactor = rules("cdc", tables={"users": {"deny": ["email"]}})
    after = redactor.explain(
        event("cdc", tags={"table": "users"}, metadata={"after": {"email": "a@b.c", "id": 1}})
    )[0]
    assert after.metadata["after"]["email"].startswith("[redacted:column:")
    assert after.metadata["after"]["id"] == 1


def test_personal_data_is_masked_only_where_a_source_opts_in() -> None:
    text = "user alice@example.com from 10.1.2.3 called +1 415 555 0100"
    opted = rules("webhook", pii=["email", "ip", "phone"])

    masked = opted.explain(event(message=text))[0].message
    untouched = Redactor(KEY).explain(event(message=text))[0].message

    assert untouched == text
    for value in ("alice@example.com", "10.1.2.3", "415 555 0100"):
        assert value not in masked
    assert "[redacted:email:" in masked
    assert "[redacted:ip:" in masked
    assert "[redacted:phone:" in masked


def test_an_allowed_path_keeps_a_secret_named_field_but_not_a_credential_in_it() -> None:
    redactor = rules("webhook", allow=["tags.token"])
    after = redactor.explain(event(tags={"token": "plain-value", "other_token": "v"}))[0]
    assert after.tags["token"] == "plain-value"
    assert after.tags["other_token"].startswith("[redacted:secret-field:")


def test_masked_values_are_counted_per_source_and_kind_and_logged_without_the_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    redactor = Redactor(KEY)
    caplog.set_level(logging.INFO, logger="khook_core.redaction.redactor")

    redactor.event(event(message="password=hunter2 token=abcdef", tags={"apiKey": "k-123"}))

    assert redactor.counts == {("webhook", "secret-pair"): 2, ("webhook", "secret-field"): 1}
    [record] = caplog.records
    assert record.redacted == {"secret-pair": 2, "secret-field": 1}  # type: ignore[attr-defined]
    assert "secret-pair at message" in record.getMessage()
    assert "hunter2" not in caplog.text
    assert "k-123" not in caplog.text


def _plugins(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plugins.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("block", "says"),
    [
        ("{mask: [metadata.kafka.topic.name]}", "metadata.kafka of kafka events is a flat map"),
        ("{tables: {users: {deny: [email]}}}", "only the cdc source has tables"),
        ("{mask: [labels.team]}", "a field path starts with one of"),
        ("{drop: [message.text]}", "message is text"),
        ("{pii: [passport]}", "pii"),
    ],
)
def test_plugins_yaml_rejects_rules_that_cannot_match(
    tmp_path: Path, block: str, says: str
) -> None:
    path = _plugins(tmp_path, f"plugins:\n  - name: kafka\n    redact: {block}\n")
    with pytest.raises(ConfigError, match=says):
        PluginSettings.load(path)


def test_plugins_yaml_accepts_rules_that_fit_the_source(tmp_path: Path) -> None:
    path = _plugins(
        tmp_path,
        "plugins:\n  - name: cdc\n    redact:\n      tables: {public.users: {allow: [id]}}\n"
        "      mask: [metadata.after.notes]\n      pii: [email]\n",
    )
    assert PluginSettings.load(path).redact_rules()["cdc"].pii == ["email"]


def test_replay_explain_names_kind_and_path_never_the_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = tmp_path / "event.json"
    payload.write_text(
        json.dumps(
            {
                "type": "deployment-failed",
                "resource": {"kind": "Service", "name": "api"},
                "message": "login with password=hunter2 failed",
                "tags": {"apiToken": "abc123"},
            }
        )
    )
    config = Path(__file__).resolve().parents[3] / "config"

    code = cli.main(
        [
            "replay",
            "--source",
            "webhook",
            "--config",
            str(config),
            "--state",
            "memory",
            "--explain",
            str(payload),
        ]
    )

    out = capsys.readouterr().out
    assert code == 0
    [line] = [json.loads(x) for x in out.splitlines()]
    assert line["redacted"] == [
        {"kind": "secret-pair", "path": "message"},
        {"kind": "secret-field", "path": "tags.apiToken"},
    ]
    assert "hunter2" not in out
    assert "abc123" not in out


def test_the_counts_are_listed_and_told_to_the_listener_as_they_grow() -> None:
    redactor = Redactor(KEY)
    told: list[tuple[str, str, int]] = []
    redactor.on_masked = lambda source, kind, n: told.append((source, kind, n))
    redactor.event(event(message="password=hunter2 token=abcdef", tags={"apiKey": "k-123"}))
    redactor.event(event(message="clean text"))

    assert told == [("webhook", "secret-pair", 2), ("webhook", "secret-field", 1)]
    assert redactor.masked() == [
        MaskCount("webhook", "secret-field", 1),
        MaskCount("webhook", "secret-pair", 2),
    ]


def test_a_failing_listener_costs_no_event_its_redaction(caplog: pytest.LogCaptureFixture) -> None:
    redactor = Redactor(KEY)

    def broken(source: str, kind: str, n: int) -> None:
        raise RuntimeError("exporter down")

    redactor.on_masked = broken
    after = redactor.event(event(message="password=hunter2"))

    assert "hunter2" not in after.message
    assert "the redaction count listener failed" in caplog.text
