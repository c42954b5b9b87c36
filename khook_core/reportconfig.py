"""Where a hook's findings go: the ``report:`` list of an ``eventConfigurations`` entry.

Each entry names one destination; all are optional, and each gets its own delivery status when
a task ends (``khook_core.reporting``)::

    report:
    - slack: {urlEnv: KHOOK_SLACK_SHOP_URL}         # incoming webhook URL, a secret
    - googleChat: {urlEnv: KHOOK_CHAT_SHOP_URL}
    - webhook:
        url: https://ops.example/findings
        body: {text: "{{.TaskState}}: {{.Finding}}", link: "{{.AgentTaskURL}}"}
    - kubernetes: {}                                  # Events on the object and on the Hook
    - github: {tokenEnv: KHOOK_GITHUB_TOKEN}          # a comment on the PR or commit
    - pagerduty: {from: oncall-bot@example.com}       # a note on the PagerDuty incident

Webhook URLs of chat services carry their credential, so they are named by environment
variable (Secret Manager injects them), never written in the hook.
"""

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
KUBERNETES_PENDING: Final = "pending"
"""The status of a ``kubernetes`` destination until the forwarder has written its Events."""


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


class KubernetesDestination(BaseModel):
    """core/v1 Events (reason ``AgentFinding``) on the event's involved object and on the Hook.

    The functions hold no cluster credentials: they record the finding, and the in-cluster
    forwarder writes the Events from the audit trail (``forwarder.finding_events``).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    on_object: bool = Field(default=True, alias="onObject")
    on_hook: bool = Field(default=True, alias="onHook")

    @model_validator(mode="after")
    def _somewhere(self) -> "KubernetesDestination":
        if not (self.on_object or self.on_hook):
            raise ValueError("a kubernetes report needs onObject or onHook")
        return self

    @property
    def pending_status(self) -> str:
        """What the functions record (``pending: object, hook``): what the forwarder writes."""
        targets = [t for t, on in (("object", self.on_object), ("hook", self.on_hook)) if on]
        return f"{KUBERNETES_PENDING}: {', '.join(targets)}"


class GithubDestination(BaseModel):
    """A comment on the pull request or commit a GitHub event came from, with the token in an
    environment variable (Secret Manager injects it); ``apiUrl`` for GitHub Enterprise."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    token_env: str = Field(default="KHOOK_GITHUB_TOKEN", alias="tokenEnv", pattern=ENV_NAME)
    api_url: str = Field(default="https://api.github.com", alias="apiUrl", pattern=r"^https?://")


class PagerdutyDestination(BaseModel):
    """A note on the PagerDuty incident a PagerDuty event came from: the REST API token in an
    environment variable (Secret Manager injects it), ``from`` the e-mail of the PagerDuty user
    the note is written as (PagerDuty requires it with a general access token)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    token_env: str = Field(default="KHOOK_PAGERDUTY_TOKEN", alias="tokenEnv", pattern=ENV_NAME)
    from_: str = Field(alias="from", pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)
    api_url: str = Field(default="https://api.pagerduty.com", alias="apiUrl", pattern=r"^https?://")


class ReportDestination(BaseModel):
    """One ``report:`` entry: exactly one of ``slack``, ``googleChat``, ``webhook``,
    ``kubernetes``, ``github``, ``pagerduty``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    slack: ChatDestination | None = None
    google_chat: ChatDestination | None = Field(default=None, alias="googleChat")
    webhook: WebhookDestination | None = None
    kubernetes: KubernetesDestination | None = None
    github: GithubDestination | None = None
    pagerduty: PagerdutyDestination | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "ReportDestination":
        named = (
            self.slack,
            self.google_chat,
            self.webhook,
            self.kubernetes,
            self.github,
            self.pagerduty,
        )
        if sum(x is not None for x in named) != 1:
            raise ValueError(
                "a report entry names exactly one of slack, googleChat, webhook, kubernetes, "
                "github, pagerduty"
            )
        return self

    @property
    def kind(self) -> str:
        if self.kubernetes:
            return "kubernetes"
        if self.github:
            return "github"
        if self.pagerduty:
            return "pagerduty"
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
    approval_deadline: Annotated[timedelta, BeforeValidator(parse_duration)] | None = Field(
        default=None, alias="approvalDeadline"
    )
    """How long an approval the task asks for stays open before it is rejected (overriding
    ``KHOOK_APPROVAL_DEADLINE`` for this hook)."""
