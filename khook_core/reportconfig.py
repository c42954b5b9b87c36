"""Where a hook's findings go: the ``report:`` list of an ``eventConfigurations`` entry.

Each entry names one destination; all are optional, and each gets its own delivery status when
a task ends (``khook_core.reporting``)::

    report:
    - slack: {urlEnv: KHOOK_SLACK_SHOP_URL}         # incoming webhook URL, a secret
    - googleChat: {urlEnv: KHOOK_CHAT_SHOP_URL}
    - webhook:
        url: https://ops.example/findings
        body: {text: "{{.TaskState}}: {{.Finding}}", link: "{{.AgentTaskURL}}"}

Webhook URLs of chat services carry their credential, so they are named by environment
variable (Secret Manager injects them), never written in the hook.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Final

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from khook_core.timeparse import parse_duration

FINDING_PLACEHOLDERS: Final = ("Finding", "TaskState", "AgentTaskURL", "TaskID", "Hook")
"""What a report webhook's body may name: ``{{.Finding}}`` …"""
PLACEHOLDER: Final = re.compile(r"\{\{\s*\.([A-Za-z][A-Za-z0-9]*)\s*\}\}")
ENV_NAME: Final = r"^[A-Z_][A-Z0-9_]*$"


class ChatDestination(BaseModel):
    """A Slack or Google Chat incoming webhook, its URL in an environment variable."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    url_env: str = Field(alias="urlEnv", pattern=ENV_NAME)


class WebhookDestination(BaseModel):
    """Any HTTP endpoint: a JSON body whose strings may name the finding's placeholders."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    url: str = Field(pattern=r"^https?://")
    body: dict[str, Any] | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    hmac_secret_env: str | None = Field(default=None, alias="hmacSecretEnv", pattern=ENV_NAME)

    @field_validator("body")
    @classmethod
    def _known_placeholders(cls, body: dict[str, Any] | None) -> dict[str, Any] | None:
        for text in _strings(body):
            for match in PLACEHOLDER.finditer(text):
                if match.group(1) not in FINDING_PLACEHOLDERS:
                    raise ValueError(
                        f"unknown placeholder {match.group(0)} in a report body (known: "
                        f"{', '.join('{{.' + p + '}}' for p in FINDING_PLACEHOLDERS)})"
                    )
        return body


class ReportDestination(BaseModel):
    """One ``report:`` entry: exactly one of ``slack``, ``googleChat``, ``webhook``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    slack: ChatDestination | None = None
    google_chat: ChatDestination | None = Field(default=None, alias="googleChat")
    webhook: WebhookDestination | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ReportDestination:
        if sum(x is not None for x in (self.slack, self.google_chat, self.webhook)) != 1:
            raise ValueError("a report entry names exactly one of slack, googleChat, webhook")
        return self

    @property
    def kind(self) -> str:
        return "slack" if self.slack else "googleChat" if self.google_chat else "webhook"


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


class TaskFollowUp(BaseModel):
    """``task:`` of a configuration: how long its agent task may run, and whether to cancel
    it then (overriding ``KHOOK_TRACK_DEADLINE`` / ``KHOOK_TRACK_CANCEL`` for this hook)."""

    model_config = ConfigDict(extra="forbid")

    deadline: Annotated[timedelta, BeforeValidator(parse_duration)] | None = None
    cancel: bool | None = None
    """Ask the agent to cancel the task when its deadline passes (``CancelTask``)."""
