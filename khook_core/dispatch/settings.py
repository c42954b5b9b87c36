"""Dispatch settings, read from the environment in one place.

kagent's own variables keep khook's names (``KAGENT_API_URL`` and its legacy alias
``KAGENT_API_BASE_URL``, ``KAGENT_USER_ID``, ``KAGENT_API_TIMEOUT`` as a Go duration), so a
khook deployment's environment carries over; everything new is ``KHOOK_…``.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator

from khook_core.envsettings import EnvSettings

DEFAULT_KAGENT_API_URL = "http://kagent-controller.kagent.svc.cluster.local:8083"
"""Helm's value; khook's code default said ``svc.local``, which does not resolve (R21)."""
DEFAULT_USER_ID = "admin@kagent.dev"
"""kagent's own fallback identity; sent explicitly on every call (R13)."""
MAX_API_TIMEOUT_S = 300.0
"""khook's upper bound for KAGENT_API_TIMEOUT."""

_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_go_duration(value: str | float | int) -> float:
    """Seconds from a Go duration (``120s``, ``1m30s``, ``500ms``) or a plain number of seconds.

    Raises:
        ValueError: not a duration.
    """
    if isinstance(value, int | float):
        return float(value)
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for match in _GO_DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match[1]) * _GO_UNITS[match[2]]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"invalid duration {value!r} (Go syntax such as 30s, 1m30s, 500ms)")
    return total


class DispatchSettings(EnvSettings):
    """How dispatchers reach agents and webhooks; every field is an environment variable."""

    kagent_api_url: str = Field(
        default=DEFAULT_KAGENT_API_URL,
        max_length=2048,
        pattern=r"^https?://",
        validation_alias=AliasChoices("KAGENT_API_URL", "KAGENT_API_BASE_URL", "kagent_api_url"),
    )
    """kagent controller base URL (``KAGENT_API_URL``; legacy ``KAGENT_API_BASE_URL``)."""
    kagent_user_id: str = Field(
        default=DEFAULT_USER_ID,
        min_length=1,
        max_length=100,
        validation_alias=AliasChoices("KAGENT_USER_ID", "kagent_user_id"),
    )
    """Sent as ``X-User-Id`` on every kagent call (``KAGENT_USER_ID``)."""
    kagent_api_timeout: float = Field(
        default=30.0,
        gt=0,
        le=MAX_API_TIMEOUT_S,
        validation_alias=AliasChoices("KAGENT_API_TIMEOUT", "kagent_api_timeout"),
    )
    """Read timeout of one request in seconds, Go syntax accepted (``KAGENT_API_TIMEOUT``).
    khook's 120 s covered a blocking call for the whole agent run; a non-blocking send is
    answered once the task is created, so 30 s is generous and leaves room for a retry."""
    a2a_version: Literal["auto", "0.3", "1.0"] = "auto"
    """``KHOOK_A2A_VERSION``: ``auto`` reads each agent's card (cached) and falls back to the
    other wire on a version error; ``0.3`` / ``1.0`` pin the wire."""
    a2a_token: SecretStr | None = None
    """``KHOOK_A2A_TOKEN``: bearer token for every A2A call (kagent ``trusted-proxy`` mode)."""
    a2a_headers: dict[str, str] = Field(default_factory=dict)
    """``KHOOK_A2A_HEADERS``: JSON object of extra headers for every A2A call (from a secret)."""
    kagent_sessions: bool = False
    """``KHOOK_KAGENT_SESSIONS``: create a kagent session through the REST API (kagent ≤ v0.10)
    before sending and use its id as contextId. Off: the contextId creates it implicitly."""
    dispatch_retries: int = Field(default=2, ge=0, le=10)
    """``KHOOK_DISPATCH_RETRIES``: retries after the first attempt, on connection errors, 429
    and 5xx."""
    dispatch_backoff: float = Field(default=0.5, ge=0, le=30)
    """``KHOOK_DISPATCH_BACKOFF``: first retry delay in seconds; doubles each retry, jittered."""
    dispatch_max_backoff: float = Field(default=5.0, ge=0, le=60)
    """``KHOOK_DISPATCH_MAX_BACKOFF``: cap of one retry delay in seconds."""
    dispatch_budget: float = Field(default=45.0, gt=0, le=3600)
    """``KHOOK_DISPATCH_BUDGET``: seconds one dispatch may take, retries included. Keep it
    below the function timeout (60 s by default) minus the state-store calls."""
    connect_timeout: float = Field(default=5.0, gt=0, le=60)
    """``KHOOK_CONNECT_TIMEOUT``: TCP/TLS connect timeout in seconds, of every dispatch."""
    webhook_timeout: float = Field(default=10.0, gt=0, le=MAX_API_TIMEOUT_S)
    """``KHOOK_WEBHOOK_TIMEOUT``: read timeout in seconds of one request to a ``webhook``
    dispatch target (outbound; the inbound webhook source does not read it)."""

    @field_validator("kagent_api_timeout", "webhook_timeout", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_go_duration(value)
        return value

    @field_validator("kagent_api_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")


def load_dispatch_settings() -> DispatchSettings:
    """``DispatchSettings`` from the environment.

    Raises:
        ConfigError: one Problem per invalid variable, named as it is set in the environment.
    """
    return DispatchSettings.from_env()
