"""Settings of the in-cluster forwarder, from flags and the environment, validated in one place.

Precedence: command-line flags, then ``KHOOK_FORWARDER_*`` variables, then the shared names the
rest of the deployment already uses (``KHOOK_TOPIC``, ``KHOOK_CLUSTER``, ``KHOOK_CONFIG_DIR``,
``GOOGLE_CLOUD_PROJECT``, ``PUBSUB_EMULATOR_HOST``), then the defaults below. Every default is
chosen for a busy production cluster; tests shrink the timings.

Read with the same mechanism as the functions' settings tree (``EnvSettings``), by the
forwarder's entry point only: ``ForwarderSettings.from_env(os.environ, overrides=flags)``.
Constructing it directly reads nothing. The ``*_seconds`` fields accept durations (``5m``).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import AliasChoices, ConfigDict, Field, field_validator, model_validator

from khook_core.envsettings import EnvSettings
from khook_core.settings import Seconds

EVENTS_API = "events.k8s.io/v1"
CORE_API = "v1"
ApiName = Literal["events.k8s.io/v1", "v1"]


def _env(name: str, *shared: str) -> AliasChoices:
    """``KHOOK_FORWARDER_<NAME>`` first, then the shared names; flags pass the field name.

    Never the bare field name: ``PORT`` or ``HOST`` from an unrelated container must not leak in.
    """
    return AliasChoices(f"KHOOK_FORWARDER_{name.upper()}", *shared)


class ForwarderSettings(EnvSettings):
    """Everything the forwarder can be told; ``khook-forwarder --help`` lists the same fields."""

    model_config = ConfigDict(
        use_attribute_docstrings=True, extra="ignore", frozen=True, populate_by_name=True
    )

    env_prefix: ClassVar[str] = "KHOOK_FORWARDER_"

    # --- what to watch -------------------------------------------------------------------------
    api: ApiName = Field(default="events.k8s.io/v1", validation_alias=_env("api"))
    """Which Events API to watch: ``events.k8s.io/v1`` (default) or the legacy ``v1``."""
    namespaces: tuple[str, ...] = Field(default=(), validation_alias=_env("namespaces"))
    """Comma-separated namespaces to watch (one watch each); empty means cluster-wide."""
    field_selector: str | None = Field(default=None, validation_alias=_env("field_selector"))
    """Server-side filter, e.g. ``type=Warning`` (it also hides Normal events a mapping enables).

    Fields are translated to the watched API's names (``involvedObject.kind`` on ``v1`` is
    ``regarding.kind`` on ``events.k8s.io/v1``); one with no equivalent there is refused."""
    kubeconfig: str | None = Field(default=None, validation_alias=_env("kubeconfig", "KUBECONFIG"))
    """Kubeconfig file(s) used outside a cluster; default ``~/.kube/config``."""
    kube_api_url: str | None = Field(default=None, validation_alias=_env("kube_api_url"))
    """API server URL used without credentials (tests); default: in-cluster, else kubeconfig."""
    in_cluster_host: str = Field(
        default="", validation_alias=_env("in_cluster_host", "KUBERNETES_SERVICE_HOST")
    )
    """The API server's address inside a pod (set by Kubernetes); with the service account's
    token and CA it selects the in-cluster configuration."""
    in_cluster_port: str = Field(
        default="", validation_alias=_env("in_cluster_port", "KUBERNETES_SERVICE_PORT")
    )
    """The API server's port inside a pod (set by Kubernetes)."""

    # --- what to forward -----------------------------------------------------------------------
    config_dir: Path = Field(
        default=Path("config"), validation_alias=_env("config_dir", "KHOOK_CONFIG_DIR")
    )
    """Holds event-mappings.yaml and plugins.yaml, the same files the functions load."""
    hooks_state: str = Field(default="", validation_alias=_env("hooks_state"))
    """State store to publish the cluster's Hooks to as the live configuration (``firestore``,
    ``firestore:DB``, ``sqlite:PATH``); empty: Hooks are not watched. The snapshot is this
    directory's mapping table, plugins and budgets plus every valid Hook (docs/hooks.md)."""
    status_interval_seconds: Seconds = Field(
        default=10.0, gt=0, validation_alias=_env("status_interval_seconds")
    )
    """With ``hooks_state``: how often each Hook's status and Events are brought up to date
    from the audit trail (a status is written only when it changed)."""
    config_refresh_seconds: Seconds = Field(
        default=10.0, gt=0, validation_alias=_env("config_refresh_seconds")
    )
    """With ``hooks_state``: how often the pre-filter reads the live configuration's version
    and, when it changed, takes the snapshot's mapping table and plugins (one small read)."""
    forward_all: bool = Field(default=False, validation_alias=_env("forward_all"))
    """Publish every fresh event, not only those a mapping could turn into a hook firing."""
    lookback_seconds: Seconds = Field(
        default=300.0, ge=0, validation_alias=_env("lookback_seconds")
    )
    """At start-up, forward listed events whose last occurrence is this recent (no flood).

    Five minutes is below the default dedup window (10 min), so a restart re-forwards only
    events the functions will recognise as duplicates."""
    max_age_seconds: Seconds | None = Field(
        default=None, gt=0, validation_alias=_env("max_age_seconds")
    )
    """Watch events whose last occurrence is older are filtered as ``stale``; default: the
    kubernetes source's ``freshnessMinutes`` (15 minutes), so MODIFIED repeats keep flowing."""
    relist_overlap_seconds: Seconds = Field(
        default=30.0, ge=0, validation_alias=_env("relist_overlap_seconds")
    )
    """Used only with an API server whose resourceVersions are not integers: a re-list then
    forwards events newer than the newest last occurrence the watch delivered minus this.

    With integer resourceVersions (every etcd-backed server) a re-list skips exactly what was
    judged before and forwards everything else inside ``max_age_seconds``."""

    resolve_owners: bool = Field(default=True, validation_alias=_env("resolve_owners"))
    """Look up the workload (Deployment, StatefulSet, DaemonSet, CronJob, Job) owning each
    published Event's Pod and send it as ``khook.workload.*`` (needs RBAC ``get`` on pods,
    replicasets and jobs); off, the functions infer it from the Pod's name."""
    owner_cache_size: int = Field(default=4096, ge=1, validation_alias=_env("owner_cache_size"))
    """Objects whose owner is remembered; a few hundred bytes each."""
    owner_cache_seconds: Seconds = Field(
        default=300.0, gt=0, validation_alias=_env("owner_cache_seconds")
    )
    """How long a looked-up owner is trusted. Owners of a live Pod never change; the expiry
    covers reused names and failed lookups, retried after it."""
    owner_lookups_per_second: float = Field(
        default=20.0, gt=0, validation_alias=_env("owner_lookups_per_second")
    )
    """Owner lookups run on the sender threads, just before a batch is published: at most this
    many a second (five seconds' worth in a burst); past it an event gets the name heuristic,
    so a storm of new Pods never holds its own publishing back."""

    # --- where to publish ----------------------------------------------------------------------
    topic: str = Field(default="khook-kubernetes", validation_alias=_env("topic", "KHOOK_TOPIC"))
    """Topic id, or a full ``projects/P/topics/T`` path."""
    project: str = Field(
        default="", validation_alias=_env("project", "GOOGLE_CLOUD_PROJECT", "GCP_PROJECT")
    )
    """Project of the topic when ``topic`` is a bare id."""
    cluster: str = Field(default="", validation_alias=_env("cluster", "KHOOK_CLUSTER"))
    """Sent as the ``khook.cluster`` attribute so one topic can serve several clusters."""
    emulator_host: str | None = Field(
        default=None, validation_alias=_env("emulator_host", "PUBSUB_EMULATOR_HOST")
    )
    """``host:port`` of a Pub/Sub emulator; plain HTTP, no credentials."""
    pubsub_url: str = Field(
        default="https://pubsub.googleapis.com", validation_alias=_env("pubsub_url")
    )
    """Pub/Sub's REST endpoint when no emulator is set (a regional or private endpoint)."""
    credentials_file: str | None = Field(
        default=None,
        validation_alias=_env("credentials_file", "GOOGLE_APPLICATION_CREDENTIALS"),
    )
    """Service-account key or user credentials file; without one, gcloud's application-default
    credentials, else the metadata server's token (Workload Identity)."""
    metadata_host: str = Field(
        default="metadata.google.internal",
        validation_alias=_env("metadata_host", "GCE_METADATA_HOST"),
    )
    """``host[:port]`` of the metadata server the token comes from."""
    queue_size: int = Field(default=10_000, ge=1, validation_alias=_env("queue_size"))
    """Messages held while Pub/Sub is unreachable; past it the oldest are dropped (counted).

    About 1.5 KiB a message, so the default bounds the queue near 15 MiB."""
    batch_size: int = Field(default=200, ge=1, le=1000, validation_alias=_env("batch_size"))
    """Messages per publish request (Pub/Sub allows 1,000); a storm holds at most
    ``publish_in_flight`` batches in flight and two queued."""
    publish_in_flight: int = Field(
        default=2, ge=1, le=8, validation_alias=_env("publish_in_flight")
    )
    """Publish requests in flight at once (one sender thread each): a request's round trip, not
    its size, bounds the rate, so two overlap one's wait with the next one's encoding."""
    batch_latency_seconds: Seconds = Field(
        default=0.02, gt=0, validation_alias=_env("batch_latency_seconds")
    )
    """How long a partial batch waits for company before it is sent."""
    publish_timeout_seconds: Seconds = Field(
        default=30.0, gt=0, validation_alias=_env("publish_timeout_seconds")
    )
    """One publish attempt's deadline; a failed batch returns to the queue and backs off."""
    flush_seconds: Seconds = Field(default=20.0, ge=0, validation_alias=_env("flush_seconds"))
    """On SIGTERM, time allowed to publish what is queued; below the pod's 30 s grace period."""

    # --- resilience ----------------------------------------------------------------------------
    watch_timeout_seconds: int = Field(
        default=30, ge=1, validation_alias=_env("watch_timeout_seconds")
    )
    """``timeoutSeconds`` of each watch call; the loop resumes from the last resourceVersion.

    Capped at a quarter of ``dead_after_seconds``: a quiet watch must end and resume well before
    liveness would fail. A stream silent for a quarter more (30 s at most) is cut as stuck. Events
    are not watch-cached by default, so each resume opens one etcd watch and gets no BOOKMARKs."""
    list_page_size: int = Field(default=500, ge=1, validation_alias=_env("list_page_size"))
    """Items per list page, so a re-list of a big cluster never holds every Event at once."""
    empty_watch_limit: int = Field(default=2, ge=1, validation_alias=_env("empty_watch_limit"))
    """Consecutive watches that close at once with nothing in them before a re-list
    (an expired resourceVersion is sometimes answered that way, kubernetes/kubernetes#104171)."""
    empty_watch_seconds: Seconds = Field(
        default=1.0, gt=0, validation_alias=_env("empty_watch_seconds")
    )
    """A watch that ends empty sooner than this counts as "closed at once"."""
    backoff_initial_seconds: Seconds = Field(
        default=0.5, gt=0, validation_alias=_env("backoff_initial_seconds")
    )
    """First wait after an API or Pub/Sub error; doubles each time, with jitter."""
    backoff_max_seconds: Seconds = Field(
        default=30.0, gt=0, validation_alias=_env("backoff_max_seconds")
    )
    """Longest wait between retries."""

    # --- operations ----------------------------------------------------------------------------
    host: str = Field(default="0.0.0.0", validation_alias=_env("host"))  # noqa: S104 - probes
    """Address of the /healthz, /readyz and /metrics server (the kubelet probes the pod IP)."""
    port: int = Field(default=8080, ge=0, le=65535, validation_alias=_env("port"))
    """Port of that server; 0 picks a free one (tests)."""
    dead_after_seconds: Seconds = Field(
        default=120.0, gt=0, validation_alias=_env("dead_after_seconds")
    )
    """/healthz fails once a watch has made no contact with the API server for this long
    (a finished list, an event or bookmark line, or a watch the server ended normally)."""
    log_format: Literal["json", "text"] = Field(
        default="json", validation_alias=_env("log_format", "KHOOK_LOG_FORMAT")
    )
    """``json`` (one object a line with ``severity``) for Cloud Logging, ``text`` for humans."""
    log_level: str = Field(default="INFO", validation_alias=_env("log_level", "KHOOK_LOG_LEVEL"))
    """Python logging level name."""

    @model_validator(mode="after")
    def _fit_field_selector(self) -> ForwarderSettings:
        if self.field_selector:
            from khook_core.forwarder.field_selectors import fit_field_selector

            fitted = fit_field_selector(self.field_selector, self.api)
            object.__setattr__(self, "field_selector", fitted or None)
        return self

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split_namespaces(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(n.strip() for n in value.split(",") if n.strip())
        return value

    @field_validator("api", mode="before")
    @classmethod
    def _api_alias(cls, value: object) -> object:
        # "core/v1" and "events" are what people type; the attribute carries the canonical name.
        aliases = {"core/v1": CORE_API, "core": CORE_API, "events": EVENTS_API}
        return aliases.get(value, value) if isinstance(value, str) else value

    def topic_path(self) -> str:
        """``projects/P/topics/T``.

        Raises:
            ValueError: a bare topic id without a project.
        """
        if self.topic.startswith("projects/"):
            return self.topic
        if not self.project:
            raise ValueError(
                f"topic {self.topic!r} needs a project: set GOOGLE_CLOUD_PROJECT (or "
                "--project), or give the topic as projects/<project>/topics/<topic>"
            )
        return f"projects/{self.project}/topics/{self.topic}"
