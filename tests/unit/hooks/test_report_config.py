"""``report:`` and ``task:`` of a hook configuration: what loads and what is refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from khook_core.reportconfig import ReportDestination, TaskFollowUp


def test_each_entry_names_exactly_one_destination() -> None:
    assert ReportDestination.model_validate({"slack": {"urlEnv": "KHOOK_SLACK"}}).kind == "slack"
    assert ReportDestination.model_validate({"googleChat": {"urlEnv": "C"}}).kind == "googleChat"
    for bad in ({}, {"slack": {"urlEnv": "A"}, "googleChat": {"urlEnv": "B"}}):
        with pytest.raises(ValidationError, match="exactly one of slack, googleChat, webhook"):
            ReportDestination.model_validate(bad)


def test_a_chat_url_is_named_by_variable_never_written_in_the_hook() -> None:
    with pytest.raises(ValidationError):
        ReportDestination.model_validate({"slack": {"url": "https://hooks.slack.com/x"}})
    with pytest.raises(ValidationError):
        ReportDestination.model_validate({"slack": {"urlEnv": "https://hooks.slack.com/x"}})


def test_a_webhook_body_names_only_the_findings_placeholders() -> None:
    ok = {"url": "https://x.example/", "body": {"a": ["{{.Finding}} {{ .TaskState }}"]}}
    assert ReportDestination.model_validate({"webhook": ok}).webhook is not None
    bad = {"url": "https://x.example/", "body": {"a": "{{.ResourceName}}"}}
    with pytest.raises(ValidationError, match=r"unknown placeholder \{\{.ResourceName\}\}"):
        ReportDestination.model_validate({"webhook": bad})


def test_a_task_deadline_is_a_duration() -> None:
    assert TaskFollowUp.model_validate({"deadline": "30m"}).deadline == timedelta(minutes=30)
    with pytest.raises(ValidationError):
        TaskFollowUp.model_validate({"deadline": "soon"})


def test_a_kubernetes_report_names_where_its_events_go() -> None:
    both = ReportDestination.model_validate({"kubernetes": {}})
    assert both.kind == "kubernetes"
    assert both.kubernetes is not None
    assert both.kubernetes.pending_status == "pending: object, hook"
    hook_only = ReportDestination.model_validate({"kubernetes": {"onObject": False}})
    assert hook_only.kubernetes is not None
    assert hook_only.kubernetes.pending_status == "pending: hook"
    with pytest.raises(ValidationError, match="needs onObject or onHook"):
        ReportDestination.model_validate({"kubernetes": {"onObject": False, "onHook": False}})
    with pytest.raises(ValidationError, match="exactly one of"):
        ReportDestination.model_validate({"kubernetes": {}, "slack": {"urlEnv": "A"}})


def test_a_pagerduty_note_names_the_requester_and_reads_its_token_from_a_variable() -> None:
    entry = ReportDestination.model_validate({"pagerduty": {"from": "bot@example.com"}})
    assert entry.kind == "pagerduty"
    assert entry.pagerduty is not None
    assert entry.pagerduty.token_env == "KHOOK_PAGERDUTY_TOKEN"
    assert entry.pagerduty.api_url == "https://api.pagerduty.com"
    for bad in (
        {},  # PagerDuty requires the From header
        {"from": "not-an-email"},
        {"from": "bot@example.com", "tokenEnv": "lower-case"},
        {"from": "bot@example.com", "token": "pd-secret-in-the-hook"},
    ):
        with pytest.raises(ValidationError):
            ReportDestination.model_validate({"pagerduty": bad})


def test_only_a_pagerduty_preset_incident_gets_a_note_path() -> None:
    from khook_core.reporting.pagerduty import note_path, reply_target

    target = reply_target("webhook", "pagerduty-incident", "Q2NW6K1ZT0RQ8A")
    assert note_path(target) == "/incidents/Q2NW6K1ZT0RQ8A/notes"
    assert reply_target("alertmanager", "pagerduty-incident", "Q2NW6K1ZT0RQ8A") == ""
    assert reply_target("webhook", "deployment-failed", "Q2NW6K1ZT0RQ8A") == ""
    assert reply_target("webhook", "pagerduty-incident", "../users/P1") == ""
    assert note_path("octo-org/shop pull 42") is None
    assert note_path("pagerduty incident ../../users") is None
