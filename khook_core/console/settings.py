"""The console's settings (``KHOOK_CONSOLE_<FIELD>``), read once by its function's entry point."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr

from khook_core.envsettings import EnvSettings


class ConsoleSettings(EnvSettings):
    """Who may read the console, and how it links to agent tasks."""

    env_prefix: ClassVar[str] = "KHOOK_CONSOLE_"

    token: SecretStr | None = None
    """Bearer token every API request must carry (``Authorization: Bearer …``); unset: none is
    asked for. In the cloud Cloud Run IAM authenticates first; this is a second lock."""
    allow_remote: bool = False
    """Answer requests from other hosts than this one. Off by default, so a console started by
    hand or by ``khook up`` answers loopback clients only; Terraform turns it on behind IAM."""
    task_url: str = Field(default="", pattern=r"^(https?://.*)?$")
    """Link for an agent task in the firings table, with ``{agent}`` (namespace/name) and
    ``{task_id}`` filled in (for example a kagent UI's task page); empty: no link."""
