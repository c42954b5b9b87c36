"""Where a hook sends its prompt: the target model.

``hooks`` builds targets from Hook documents and the dispatchers deliver to them, so the model
sits below both; ``khook_core.dispatch.base`` re-exports it beside the dispatcher contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Target:
    """Where a hook sends its prompt.

    ``kind`` is ``agent`` (kagent agent by ``namespace``/``name``), ``a2a`` (any A2A agent at
    ``url``) or ``webhook`` (a JSON POST to ``url``). ``options`` carries the target's extra
    settings (webhook body template, secret variable names, A2A version).
    """

    kind: Literal["agent", "a2a", "webhook"]
    name: str = ""
    namespace: str = ""
    url: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        """How the target appears in decisions, logs and audit records (never a secret)."""
        return self._label

    @cached_property
    def _label(self) -> str:
        """Worked out once per target: every decision and audit record of a firing asks."""
        if self.kind == "agent":
            return f"{self.namespace}/{self.name}"
        if self.kind == "webhook":
            return redact_url(self.url)
        return self.url


def redact_url(url: str) -> str:
    """Scheme and host only: webhook paths and queries often are the secret (Slack, Teams)."""
    parts = urlsplit(url)
    tail = "/…" if parts.path not in ("", "/") or parts.query else ""
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{tail}"
