"""The settings tree, read from the environment in one place.

Each entry point builds its tree once and passes it down; library code never reads
``os.environ``. ``Settings.from_env()`` is the one read of the functions and the ``khook`` CLI
(``khook_core.transport.start`` at a function's cold start, ``khook_core.cli.main``);
the forwarder and the local function server read their own groups from the environment their
``main`` is given (``ForwarderSettings``, ``ServerSettings``), with the same mechanism.

::

    Settings                      KHOOK_CONFIG_DIR, KHOOK_STATE, KHOOK_DISPATCH, KHOOK_LOG_*, ...
    ├── dispatchers: DispatchSettings   KAGENT_API_URL, KAGENT_USER_ID, KHOOK_A2A_*, ...
    ├── firestore: FirestoreSettings    GOOGLE_CLOUD_PROJECT, FIRESTORE_EMULATOR_HOST
    ├── console: ConsoleSettings        KHOOK_CONSOLE_TOKEN, _ALLOW_REMOTE, _TASK_URL
    ├── telemetry: TelemetrySettings    KHOOK_TELEMETRY, KHOOK_TELEMETRY_*
    └── group(HttpCredentials, prefix="KHOOK_<SOURCE>_")   per source, built when first asked

Every variable is in the README's configuration table; durations accept what
``khook_core.timeparse.parse_seconds`` accepts.
"""

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final, Literal, TypeVar

from pydantic import (
    AliasChoices,
    BeforeValidator,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)

from khook_core import timeparse
from khook_core.envsettings import EnvSettings

DEFAULT_STATE: Final = "sqlite:.khook/state.db"
DEFAULT_KAGENT_API_URL: Final = "http://kagent-controller.kagent.svc.cluster.local:8083"
"""Helm's value; khook's code default said ``svc.local``, which does not resolve (R21)."""
DEFAULT_USER_ID: Final = "admin@kagent.dev"
"""kagent's own fallback identity; sent explicitly on every call (R13)."""
MAX_API_TIMEOUT_S: Final = 300.0
"""khook's upper bound for KAGENT_API_TIMEOUT."""
FIRESTORE_EMULATOR_PROJECT: Final = "demo-khook"
"""The project under the Firestore emulator when ``GOOGLE_CLOUD_PROJECT`` is unset (a ``demo-``
project never reaches Google)."""

Seconds = Annotated[float, BeforeValidator(timeparse.seconds_or_value)]
"""A number of seconds, or a duration (``90s``, ``10m``, ``1h30m``) in the environment."""

GroupT = TypeVar("GroupT", bound=EnvSettings)


def _aliases(*names: str) -> AliasChoices:
    """Variables read for a field, in order (upper case), and its field name (keyword use)."""
    return AliasChoices(*names, names[0].lower())


class DispatchSettings(EnvSettings):
    """How dispatchers reach agents and webhooks; every field is an environment variable.

    kagent's own variables keep khook's names (``KAGENT_API_URL`` and its legacy alias
    ``KAGENT_API_BASE_URL``, ``KAGENT_USER_ID``, ``KAGENT_API_TIMEOUT`` as a Go duration), so a
    khook deployment's environment carries over; everything new is ``KHOOK_…``.
    """

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
        validation_alias=_aliases("KAGENT_USER_ID"),
    )
    """Sent as ``X-User-Id`` on every kagent call (``KAGENT_USER_ID``)."""
    kagent_api_timeout: Seconds = Field(
        default=30.0, gt=0, le=MAX_API_TIMEOUT_S, validation_alias=_aliases("KAGENT_API_TIMEOUT")
    )
    """Read timeout of one request in seconds, Go syntax accepted (``KAGENT_API_TIMEOUT``).
    khook's 120 s covered a blocking call for the whole agent run; a non-blocking send is
    answered once the task is created, so 30 s is generous and leaves room for a retry."""
    a2a_version: Literal["auto", "0.3", "1.0"] = "auto"
    """``KHOOK_A2A_VERSION``: ``auto`` reads each agent's card (cached) and falls back on the
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
    dispatch_backoff: Seconds = Field(default=0.5, ge=0, le=30)
    """``KHOOK_DISPATCH_BACKOFF``: first retry delay in seconds; doubles each retry, jittered."""
    dispatch_max_backoff: Seconds = Field(default=5.0, ge=0, le=60)
    """``KHOOK_DISPATCH_MAX_BACKOFF``: cap of one retry delay in seconds."""
    dispatch_budget: Seconds = Field(default=45.0, gt=0, le=3600)
    """``KHOOK_DISPATCH_BUDGET``: seconds one dispatch may take, retries included. Keep it
    below the function timeout (60 s by default) minus the state-store calls."""
    connect_timeout: Seconds = Field(default=5.0, gt=0, le=60)
    """``KHOOK_CONNECT_TIMEOUT``: TCP/TLS connect timeout in seconds, of every dispatch."""
    webhook_timeout: Seconds = Field(default=10.0, gt=0, le=MAX_API_TIMEOUT_S)
    """``KHOOK_WEBHOOK_TIMEOUT``: read timeout in seconds of one request to a ``webhook``
    dispatch target (outbound; the inbound webhook source does not read it)."""

    @field_validator("kagent_api_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")


class FirestoreSettings(EnvSettings):
    """Where the ``firestore`` state store lives (Google's own variable names)."""

    project: str = Field(default="", validation_alias=_aliases("GOOGLE_CLOUD_PROJECT"))
    """``GOOGLE_CLOUD_PROJECT``; unset: the credentials' project."""
    emulator_host: str = Field(default="", validation_alias=_aliases("FIRESTORE_EMULATOR_HOST"))
    """``FIRESTORE_EMULATOR_HOST``: ``host:port`` of the emulator (the client reads it too)."""

    def project_id(self) -> str | None:
        """The project to open: the variable, else the emulator's, else the credentials'."""
        return self.project or (FIRESTORE_EMULATOR_PROJECT if self.emulator_host else None)


class ConsoleSettings(EnvSettings):
    """Who may read the console (``functions/console``), and how it links to agent tasks."""

    env_prefix: ClassVar[str] = "KHOOK_CONSOLE_"

    token: SecretStr | None = None
    """Bearer token every console API request must carry (``Authorization: Bearer …``); unset:
    none is asked for. In the cloud Cloud Run IAM authenticates first; this is a second lock."""
    allow_remote: bool = False
    """Answer console requests from other hosts than this one. Off by default, so a console
    started by hand or by ``khook up`` answers loopback clients only; Terraform turns it on
    behind IAM."""
    task_url: str = Field(default="", pattern=r"^(https?://.*)?$")
    """Link for an agent task in the console's firings table, with ``{agent}`` (namespace/name)
    and ``{task_id}`` filled in (for example a kagent UI's task page); empty: no link."""


class Settings(EnvSettings):
    """Process-wide settings (``KHOOK_<FIELD>``); each is documented in the README's table."""

    config_dir: Path = Path("config")
    """Directory holding event-mappings.yaml, plugins.yaml and hooks/."""
    state: str = DEFAULT_STATE
    """State store: ``memory``, ``sqlite:PATH`` (embedded default) or ``firestore``."""
    dispatch: Literal["auto", "dry-run"] = "auto"
    """``dry-run`` forces the dry-run dispatcher; ``auto`` sends to each hook's target."""
    log_format: Literal["json", "text"] = "text"
    """``json`` for Cloud Logging (the default on Cloud Run, where ``K_SERVICE`` is set),
    ``text`` otherwise."""
    log_level: str = "INFO"
    """Python logging level name."""
    disable_sources: str = ""
    """Comma-separated source plugins not to load, or ``all``."""
    dedup_window: Seconds | None = Field(default=None, gt=0)
    """Default dedup window in seconds for hooks that set no ``dedupWindow`` (default 600)."""
    body_read_timeout: Seconds = Field(default=10.0, gt=0, le=300)
    """Seconds a request's body may take to arrive, counted from the request: a stalled or
    dripping client is answered 408 instead of holding one of the server's threads."""
    invocation_budget: Seconds = Field(default=50.0, gt=0, le=3600)
    """Seconds one function invocation may spend on its dispatches (below the function's
    60 s timeout); what does not fit is released and answered retryable."""
    redaction_key: SecretStr | None = Field(default=None, min_length=16)
    """Key of the keyed hash in ``[redacted:KIND:HASH8]`` masks (16+ bytes; hex or text).
    ``khook up`` writes one for the local stack; unset, each process draws a random key (masks
    then match only within one instance)."""
    cloud_run_service: str = Field(default="", validation_alias=_aliases("K_SERVICE"))
    """``K_SERVICE``, set by Cloud Run: only chooses the default log format."""
    config_refresh: Seconds = Field(default=10.0, ge=0, le=3600)
    """Seconds between two reads of the live configuration's version in the state store (one
    read an interval, not one an event); 0 keeps the configuration loaded at start. Also the
    seconds between two reads of the active silences (0: on every event)."""

    dispatchers: DispatchSettings = Field(default_factory=DispatchSettings)
    """How dispatchers reach agents and webhooks."""
    firestore: FirestoreSettings = Field(default_factory=FirestoreSettings)
    """Where the ``firestore`` state store lives."""
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    """Who may read the console (``KHOOK_CONSOLE_*``)."""
    telemetry: "TelemetrySettings" = Field(default_factory=lambda: TelemetrySettings())
    """Traces and metrics (``KHOOK_TELEMETRY``, ``KHOOK_TELEMETRY_*``)."""

    _environ: dict[str, str] = PrivateAttr(default_factory=dict)
    _groups: dict[tuple[type[EnvSettings], str | None], EnvSettings] = PrivateAttr(
        default_factory=dict
    )

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        prefix: str | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> "Settings":
        """The tree from ``environ`` (default: this process's environment, read once here).

        Raises:
            ConfigError: one Problem per invalid variable, named as it is set.
        """
        env = dict(os.environ if environ is None else environ)
        settings = super().from_env(env, prefix=prefix, overrides=overrides)
        settings._environ = env
        return settings

    @property
    def environ(self) -> Mapping[str, str]:
        """The environment the tree was read from (empty when built in code): where groups
        built on demand (``group``) and the variables hooks name (``hmacSecretEnv``,
        ``${NAME}`` headers) are looked up. Not a field, so never printed: it holds secrets."""
        return self._environ

    @model_validator(mode="before")
    @classmethod
    def _log_format_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and "log_format" not in data and "KHOOK_LOG_FORMAT" not in data:
            service = data.get("cloud_run_service") or data.get("K_SERVICE")
            data = {**data, "log_format": "json" if service else "text"}
        return data

    def group(self, kind: type[GroupT], *, prefix: str | None = None) -> GroupT:
        """A group read from this tree's environment when first asked, then kept.

        For groups whose names depend on the caller (``HttpCredentials`` of one source, with
        ``prefix="KHOOK_<SOURCE>_"``).

        Raises:
            ConfigError: an invalid variable of the group, named.
        """
        key = (kind, prefix)
        found = self._groups.get(key)  # built already: no lock (the per-event path)
        if found is None:
            with _GROUPS_LOCK:
                found = self._groups.get(key)
                if found is None:
                    found = self._groups[key] = kind.from_env(self.environ, prefix=prefix)
        assert isinstance(found, kind)
        return found


_GROUPS_LOCK: Final = threading.Lock()
"""functions-framework serves requests from several threads; a group is built once."""


class TrackingSettings(EnvSettings):
    """How dispatched agent tasks are followed to their end (``KHOOK_TRACK_*``, read with
    ``Settings.group(TrackingSettings)``; see docs/dispatch.md, "Following tasks")."""

    env_prefix: ClassVar[str] = "KHOOK_TRACK_"

    enabled: bool = True
    """``KHOOK_TRACK_ENABLED``: follow every A2A task after its dispatch (from the sweep)."""
    deadline: Seconds = Field(default=3600.0, gt=0, le=7 * 24 * 3600)
    """``KHOOK_TRACK_DEADLINE``: seconds after its dispatch a task still open is ``timed-out``
    (one hour: an investigation that has not ended by then waits for a person anyway)."""
    cancel: bool = False
    """``KHOOK_TRACK_CANCEL``: also cancel a timed-out task at the agent (``CancelTask``)."""
    batch: int = Field(default=200, ge=1, le=5000)
    """``KHOOK_TRACK_BATCH``: tasks asked about per sweep tick at most; the others wait for the
    next tick (a tick must fit the function's timeout)."""
    first_check: Seconds = Field(default=10.0, ge=0, le=3600)
    """``KHOOK_TRACK_FIRST_CHECK``: seconds after the dispatch the agent is first asked."""
    backoff: Seconds = Field(default=15.0, gt=0, le=3600)
    """``KHOOK_TRACK_BACKOFF``: wait before the next question after a task was still open;
    doubles with every question, up to ``max_backoff``."""
    max_backoff: Seconds = Field(default=300.0, gt=0, le=3600)
    """``KHOOK_TRACK_MAX_BACKOFF``: the longest wait between two questions about one task."""
    push_url: str = Field(default="", max_length=2048, pattern=r"^(https?://.*)?$")
    """``KHOOK_TRACK_PUSH_URL``: the public URL of ``functions/tasks`` (A2A push notifications).
    Set: an agent whose card advertises push notifications reports its tasks there, and they
    are not polled (only asked about once at their deadline). Empty: every task is polled."""


class TelemetrySettings(EnvSettings):
    """Where traces and metrics go (``khook_core.telemetry``).

    Off by default: with ``off`` no OpenTelemetry module is imported at all, so a function
    that does not export pays nothing at its cold start. Terraform sets ``gcp`` in the cloud.
    """

    env_prefix: ClassVar[str] = "KHOOK_TELEMETRY_"

    mode: Literal["off", "console", "gcp"] = Field(
        default="off", validation_alias=_aliases("KHOOK_TELEMETRY")
    )
    """``KHOOK_TELEMETRY``: ``off``; ``console`` (spans and metrics printed to stdout, for a
    look on one machine); ``gcp`` (Cloud Trace and Cloud Monitoring, through the exporters of
    the ``cloud`` extra)."""
    export_interval: Seconds = Field(default=60.0, ge=5, le=3600)
    """``KHOOK_TELEMETRY_EXPORT_INTERVAL``: seconds between two metric exports. Cloud
    Monitoring accepts one point a series every 5 s at most; 60 s keeps a function's writes
    (and their cost) low."""
    sample_ratio: float = Field(default=1.0, ge=0, le=1)
    """``KHOOK_TELEMETRY_SAMPLE_RATIO``: share of the traces started here that are kept (a
    trace that arrives with a ``traceparent`` follows its sender's decision)."""


class ApprovalSettings(EnvSettings):
    """How a paused agent task waits for a person (``KHOOK_APPROVAL_*``, read with
    ``Settings.group(ApprovalSettings)``; see docs/operations.md, "Approvals")."""

    env_prefix: ClassVar[str] = "KHOOK_APPROVAL_"

    deadline: Seconds = Field(default=3600.0, gt=0, le=7 * 24 * 3600)
    """``KHOOK_APPROVAL_DEADLINE``: seconds an approval stays open before the sweep rejects it
    (a hook's ``task: {approvalDeadline: …}`` overrides it)."""
    batch: int = Field(default=100, ge=1, le=5000)
    """``KHOOK_APPROVAL_BATCH``: approvals past their deadline decided per sweep tick at most."""


Settings.model_rebuild()  # its telemetry group is declared after it (groups are appended)
