"""Settings read from the environment (``KHOOK_`` prefix), in one place.

Entry points (functions, CLI, forwarder) build ``Settings.from_env()`` once and pass it down;
library code never reads ``os.environ`` itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field

from khook_core.envsettings import EnvSettings

DEFAULT_STATE = "sqlite:.khook/state.db"


class Settings(EnvSettings):
    """Process-wide settings (``KHOOK_<FIELD>``); each is documented in the README's table."""

    config_dir: Path = Path("config")
    """Directory holding event-mappings.yaml, plugins.yaml and hooks/."""
    state: str = DEFAULT_STATE
    """State store: ``memory``, ``sqlite:PATH`` (embedded default) or ``firestore``."""
    dispatch: Literal["auto", "dry-run"] = "auto"
    """``dry-run`` forces the dry-run dispatcher; ``auto`` sends to each hook's target."""
    log_format: Literal["json", "text"] = Field(
        default_factory=lambda: "json" if os.environ.get("K_SERVICE") else "text"
    )
    """``json`` for Cloud Logging (the default on Cloud Run), ``text`` locally."""
    log_level: str = "INFO"
    """Python logging level name."""
    disable_sources: str = ""
    """Comma-separated source plugins not to load, or ``all``."""
    dedup_window: float | None = Field(default=None, gt=0)
    """Default dedup window in seconds for hooks that set no ``dedupWindow`` (default 600)."""
    body_read_timeout: float = Field(default=10.0, gt=0, le=300)
    """Seconds a request's body may take to arrive, counted from the request: a stalled or
    dripping client is answered 408 instead of holding one of the server's threads."""
    invocation_budget: float = Field(default=50.0, gt=0, le=3600)
    """Seconds one function invocation may spend on its dispatches (below the function's
    60 s timeout); what does not fit is released and answered retryable."""
    redaction_key: str = Field(default="", repr=False, pattern=r"^(?:|[\s\S]{16,})$")
    """Key of the keyed hash in ``[redacted:KIND:HASH8]`` masks (16+ bytes; hex or text).
    ``khook up`` writes one for the local stack; unset, each process draws a random key (masks
    then match only within one instance)."""
