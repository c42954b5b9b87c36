"""The ``webhook`` source: a documented generic JSON event, field mapping per endpoint, GitHub.

An endpoint is the first segment of the request path (``/`` is ``default``, ``/github`` is
``github``); each has its own preset and authentication settings in ``plugins.yaml``:

- ``generic``: the body is one event (or a list of up to ``MAX_BATCH``) in the schema of
  ``fieldmap.GenericEvent``, validated strictly so a typo is a 422 naming the field;
- ``github``: GitHub ``workflow_run`` and ``deployment_status`` failures → ``deployment-failed``;
- ``auto`` (the ``default`` endpoint): GitHub when the request looks like a GitHub delivery,
  generic otherwise;
- ``mapped``: ``rules`` written in the field-mapping language, for any other JSON shape;
- ``cloudevents``: CloudEvents 1.0 over HTTP (``khook_core.sources.webhook_cloudevents``); the
  ``auto`` preset also takes a request as CloudEvents when its content type or ``ce-*`` headers
  say so;
- ``grafana``: Grafana Alerting's webhook contact point (``webhook_grafana``);
- ``pagerduty``: PagerDuty v3 webhook subscriptions (``webhook_pagerduty``), usually with
  ``auth: pagerduty``.

An endpoint's ``auth`` may also be a sender's own scheme, ``standard-webhooks`` or ``pagerduty``
(checked by the HTTP transport); with Standard Webhooks the ``webhook-id`` header is the
occurrence id of a generic event that carries no ``id`` of its own.

This module owns the endpoints, their presets and the GitHub translation. The field-mapping
language and the generic event schema are shared with the kafka and cdc sources and live in
``khook_core.sources.fieldmap``; this module only applies them.

Every model here is built on first use (``defer_build``), like those of ``fieldmap``.
"""

import re
from collections.abc import Mapping
from typing import Any, ClassVar, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from khook_core.configmodel import new_list
from khook_core.errors import InvalidEventError
from khook_core.event import Event
from khook_core.sources import webhook_cloudevents, webhook_grafana, webhook_pagerduty
from khook_core.sources.base import DEFAULT_MAX_BODY_BYTES, Dropped, SourceContext
from khook_core.sources.fieldmap import (
    KEBAB_CASE,
    FieldRule,
    GenericEvent,
    content_digest,
    first_match,
    glob_match,
    object_field,
    scalar_text,
    schema_error,
    to_event,
    validate_generic,
)
from khook_core.sources.jsonwords import json_type

MAX_BATCH: Final = 100
"""Events in one generic request: a sender with more splits them, so one bad request stays small."""
DEFAULT_ENDPOINT: Final = "default"
GITHUB_EVENT_TYPE: Final = "deployment-failed"


class GithubOptions(BaseModel):
    """What counts as a failure in GitHub deliveries."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)

    event_type: str = Field(
        default=GITHUB_EVENT_TYPE, alias="eventType", pattern=KEBAB_CASE.pattern
    )
    workflows: list[str] | None = None
    """Only these workflow names (glob patterns); all workflows when unset."""
    conclusions: list[str] = Field(
        default_factory=lambda: ["failure", "timed_out", "startup_failure"]
    )
    """``workflow_run.conclusion`` values that are failures."""
    deployment_states: list[str] = Field(
        default_factory=lambda: ["failure", "error"], alias="deploymentStates"
    )
    """``deployment_status.state`` values that are failures."""
    environments: dict[str, str] = Field(default_factory=dict)
    """Deployment environment → the workload it deploys, as ``NAMESPACE/KIND/NAME``
    (``production: shop/Deployment/checkout``); a key ``owner/repo/environment`` is for one
    repository and wins over the plain environment name."""

    @field_validator("environments")
    @classmethod
    def _workload_refs(cls, value: dict[str, str]) -> dict[str, str]:
        for environment, ref in value.items():
            parts = ref.split("/")
            if len(parts) != 3 or not all(parts[1:]):
                raise ValueError(
                    f"environments[{environment!r}]: {ref!r} is not "
                    "NAMESPACE/KIND/NAME (e.g. shop/Deployment/checkout)"
                )
        return value

    def workload_of(self, repo: str, environment: str) -> dict[str, str]:
        """The generic event's ``workload`` for a deployment environment, or empty."""
        ref = self.environments.get(f"{repo}/{environment}") or self.environments.get(environment)
        if not ref:
            return {}
        namespace, kind, name = ref.split("/")
        return {"namespace": namespace, "kind": kind, "name": name}


Preset = Literal["auto", "generic", "github", "mapped", "cloudevents", "grafana", "pagerduty"]


class EndpointConfig(BaseModel):
    """One endpoint (``plugins.yaml`` → ``config.endpoints.<name>``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)

    preset: Preset | None = None
    """``auto`` (default), ``generic``, ``github``, ``cloudevents``, ``grafana``, ``pagerduty``
    or ``mapped`` (implied by ``rules``)."""
    rules: list[FieldRule] = Field(default_factory=new_list)
    """For ``mapped``: the first rule whose ``when`` holds builds the event."""
    github: GithubOptions = Field(default_factory=GithubOptions)
    auth: Literal["any", "bearer", "hmac", "standard-webhooks", "pagerduty"] = "any"
    """Which credential this endpoint accepts: a bearer token, an HMAC signature, or either; or
    a sender's scheme, Standard Webhooks or PagerDuty v3 signatures."""
    signature_header: str | None = Field(default=None, alias="signatureHeader")
    """Header carrying ``sha256=<hex>``; default X-Hub-Signature-256 or X-Signature-256."""
    timestamp_header: str | None = Field(default=None, alias="timestampHeader")
    """When set, the header is required, must be within the replay window, and is signed
    (HMAC over ``<timestamp>.<body>``)."""
    replay_window_seconds: float = Field(default=300, gt=0, alias="replayWindowSeconds")
    max_body_bytes: int = Field(
        default=DEFAULT_MAX_BODY_BYTES, gt=0, le=32 * 1024 * 1024, alias="maxBodyBytes"
    )

    @model_validator(mode="after")
    def _preset(self) -> "EndpointConfig":
        if self.preset is None:
            self.preset = "mapped" if self.rules else "auto"
        if self.preset == "mapped" and not self.rules:
            raise ValueError("preset 'mapped' needs at least one rule")
        if self.rules and self.preset != "mapped":
            raise ValueError(f"rules are only used by preset 'mapped', not {self.preset!r}")
        return self


_ENDPOINT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class WebhookConfig(BaseModel):
    """Settings of the webhook source (``plugins.yaml`` → ``config:``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)

    endpoints: dict[str, EndpointConfig] = Field(default_factory=dict)
    """Merged over the built-in ``default`` (auto) and ``github`` endpoints."""

    @field_validator("endpoints")
    @classmethod
    def _names(cls, value: dict[str, EndpointConfig]) -> dict[str, EndpointConfig]:
        for name in value:
            if not _ENDPOINT_NAME.match(name):
                raise ValueError(f"endpoint name {name!r} must be a lower-case path segment")
        return value


_GITHUB_EVENTS: Final = ("workflow_run", "deployment_status")


class WebhookSource:
    """Normalises one webhook request body into events, by endpoint."""

    name: ClassVar[str] = "webhook"
    version: ClassVar[str] = "1.0.0"
    event_types: ClassVar[tuple[str, ...]] = (
        GITHUB_EVENT_TYPE,
        webhook_grafana.EVENT_TYPE,
        webhook_pagerduty.EVENT_TYPE,
    )
    config_model: ClassVar[type[BaseModel] | None] = WebhookConfig

    def __init__(self, config: BaseModel | None, context: SourceContext) -> None:
        cfg = config if isinstance(config, WebhookConfig) else WebhookConfig()
        self.context = context
        self.endpoints: dict[str, EndpointConfig] = {
            DEFAULT_ENDPOINT: EndpointConfig(preset="auto"),
            "github": EndpointConfig(preset="github", auth="hmac"),
            "grafana": EndpointConfig(preset="grafana"),
            "pagerduty": EndpointConfig(preset="pagerduty", auth="pagerduty"),
            **cfg.endpoints,
        }

    def endpoint(self, path: str) -> tuple[str, EndpointConfig]:
        """The endpoint for a request path (its first segment; ``/`` is ``default``)."""
        name = path.strip("/").split("/", 1)[0] or DEFAULT_ENDPOINT
        config = self.endpoints.get(name)
        if config is None:
            raise InvalidEventError(
                f"unknown webhook endpoint {name!r} "
                f"(configured: {', '.join(sorted(self.endpoints))})",
                field="path",
                status=404,
            )
        return name, config

    def http_options(self, path: str) -> dict[str, Any]:
        """Per-endpoint HTTP settings, read by ``khook_core.transport.http``."""
        _, cfg = self.endpoint(path)
        options: dict[str, Any] = {
            "auth": cfg.auth,
            "max_body_bytes": cfg.max_body_bytes,
            "replay_window_seconds": cfg.replay_window_seconds,
            "timestamp_header": cfg.timestamp_header,
            "content_types": ("application/json", *webhook_cloudevents.CONTENT_TYPES),
        }
        if cfg.signature_header:
            options["signature_headers"] = (cfg.signature_header,)
        return options

    def normalize(self, raw: Any, attributes: Mapping[str, str]) -> list[Event]:
        path = attributes.get("khook.endpoint") or attributes.get("http.path", "/")
        name, cfg = self.endpoint(path)
        preset = cfg.preset
        if preset == "auto":
            preset = _detect(raw, attributes)
        raw_ref = f"webhook:{name}:{attributes.get('http.request_id', '')}".rstrip(":")
        if preset in ("cloudevents", "grafana", "pagerduty"):
            return self._sender_preset(preset, raw, attributes, name, raw_ref)
        if webhook_cloudevents.content_type(attributes) in webhook_cloudevents.CONTENT_TYPES:
            raise InvalidEventError(
                f"endpoint {name!r} (preset {preset}) does not take "
                "CloudEvents; use a cloudevents or auto endpoint",
                field="content-type",
                status=415,
            )
        delivery = (
            attributes.get("webhook-id", "")
            if attributes.get("http.auth") == "standard-webhooks"
            else ""
        )
        if preset == "github":
            return [self._github(raw, attributes, cfg.github, name, raw_ref)]
        items = raw if isinstance(raw, list) else [raw]
        if not items:
            raise Dropped("empty-batch")
        if len(items) > MAX_BATCH:
            raise schema_error(
                f"(body): at most {MAX_BATCH} events per request, got {len(items)}", "(body)"
            )
        events = []
        for index, item in enumerate(items):
            where = f"events[{index}]." if isinstance(raw, list) else ""
            if preset == "mapped":
                event = self._mapped(item, attributes, cfg, name, raw_ref, where)
            else:
                if not isinstance(item, dict):
                    at = where.rstrip(".") or "(body)"
                    raise schema_error(
                        f"{at}: expected an object (an event), got {json_type(item)}", at
                    )
                generic = validate_generic(item, where)
                if delivery and not generic.id:
                    suffix = f"#{index}" if isinstance(raw, list) else ""
                    generic = generic.model_copy(update={"id": f"{delivery}{suffix}"[:512]})
                event = to_event(
                    generic,
                    source=self.name,
                    now=self.context.clock(),
                    raw_ref=raw_ref,
                    metadata={"endpoint": name},
                    id_parts=(name, generic.id or content_digest(item)),
                )
            if event is not None:
                events.append(event)
        if not events:
            raise Dropped("no-rule")
        return events

    def _sender_preset(
        self,
        preset: str,
        raw: Any,
        attributes: Mapping[str, str],
        name: str,
        raw_ref: str,
    ) -> list[Event]:
        """The presets of senders with a published format, each in its own module."""
        now = self.context.clock()
        if preset == "grafana":
            return webhook_grafana.normalize(
                raw, source=self.name, endpoint=name, now=now, raw_ref=raw_ref
            )
        if preset == "pagerduty":
            return [
                webhook_pagerduty.normalize(
                    raw, source=self.name, endpoint=name, now=now, raw_ref=raw_ref
                )
            ]
        return webhook_cloudevents.normalize(
            raw,
            attributes,
            source=self.name,
            endpoint=name,
            mapping=self.context.mapping,
            now=now,
            raw_ref=raw_ref,
        )

    def _mapped(
        self,
        item: Any,
        attributes: Mapping[str, str],
        cfg: EndpointConfig,
        name: str,
        raw_ref: str,
        where: str,
    ) -> Event | None:
        meta = {"endpoint": name, "headers": dict(attributes)}
        rule = first_match(cfg.rules, item, meta)
        if rule is None:
            return None
        data = rule.render(item, meta)
        generic = validate_generic(data, where)
        return to_event(
            generic,
            source=self.name,
            now=self.context.clock(),
            raw_ref=raw_ref,
            id_parts=(name, generic.id or content_digest(item)),
            metadata={"endpoint": name},
        )

    def _github(
        self,
        raw: Any,
        attributes: Mapping[str, str],
        opts: GithubOptions,
        endpoint: str,
        raw_ref: str,
    ) -> Event:
        body = object_field(raw, "(body)", required=True)
        kind = attributes.get("x-github-event") or next(
            (k for k in ("workflow_run", "deployment_status", "zen") if k in body), ""
        )
        if kind in ("ping", "zen"):
            raise Dropped("ping")
        if kind not in _GITHUB_EVENTS:
            raise Dropped("unsupported-github-event")
        repo = object_field(body.get("repository"), "repository", required=True)
        repo_name = scalar_text(repo, "full_name", "repository.full_name") or scalar_text(
            repo, "name", "repository.name"
        )
        if not repo_name:
            raise schema_error("repository.full_name: required", "repository.full_name")
        sender = scalar_text(object_field(body.get("sender"), "sender"), "login", "sender.login")
        delivery = attributes.get("x-github-delivery", "")
        tags = {"repository": repo_name, "github_event": kind}
        if sender:
            tags["sender"] = sender
        if kind == "workflow_run":
            generic, ids = self._workflow_run(body, opts, repo_name, tags)
        else:
            generic, ids = self._deployment_status(body, opts, repo_name, tags)
        return to_event(
            generic,
            source=self.name,
            now=self.context.clock(),
            raw_ref=raw_ref,
            id_parts=(endpoint, kind, *ids),
            metadata={"endpoint": endpoint, "github_delivery": delivery},
        )

    @staticmethod
    def _workflow_run(
        body: dict[str, Any], opts: GithubOptions, repo: str, tags: dict[str, str]
    ) -> tuple[GenericEvent, tuple[str, ...]]:
        run = object_field(body.get("workflow_run"), "workflow_run", required=True)
        action = scalar_text(body, "action", "action")
        conclusion = scalar_text(run, "conclusion", "workflow_run.conclusion")
        definition = object_field(body.get("workflow"), "workflow")
        workflow = scalar_text(run, "name", "workflow_run.name") or scalar_text(
            definition, "name", "workflow.name"
        )
        path = scalar_text(run, "path", "workflow_run.path") or scalar_text(
            definition, "path", "workflow.path"
        )
        if action and action != "completed":
            raise Dropped("not-completed")
        if conclusion not in opts.conclusions:
            raise Dropped("not-a-failure")
        if opts.workflows is not None and not any(glob_match(p, workflow) for p in opts.workflows):
            raise Dropped("workflow-not-selected")
        run_id = scalar_text(run, "id", "workflow_run.id")
        if not run_id:
            raise schema_error("workflow_run.id: required", "workflow_run.id")
        attempt = scalar_text(run, "run_attempt", "workflow_run.run_attempt") or "1"
        branch = scalar_text(run, "head_branch", "workflow_run.head_branch")
        sha = scalar_text(run, "head_sha", "workflow_run.head_sha")
        url = scalar_text(run, "html_url", "workflow_run.html_url")
        number = scalar_text(run, "run_number", "workflow_run.run_number")
        title = scalar_text(run, "display_title", "workflow_run.display_title")
        tags |= {"workflow": workflow, "conclusion": conclusion, "branch": branch}
        pulls = run.get("pull_requests")
        pull = pulls[0] if isinstance(pulls, list) and pulls and isinstance(pulls[0], dict) else {}
        message = (
            f"GitHub workflow {workflow!r} run #{number or run_id} (attempt {attempt}) in "
            f"{repo} on {branch or '?'} at {sha[:12] or '?'} concluded {conclusion}"
        )
        if title:
            message += f": {title}"
        generic = validate_generic(
            {
                "type": opts.event_type,
                "severity": "error",
                "reason": f"WorkflowRun{conclusion.title().replace('_', '')}",
                # The file path identifies the workflow (names may repeat) and is prompt-safe.
                "resource": {"kind": "GitHubWorkflow", "name": f"{repo}/{path or workflow}"[:253]},
                "message": message,
                "id": f"workflow_run/{run_id}/{attempt}",
                "timestamp": run.get("updated_at") or None,
                "firstTimestamp": run.get("run_started_at") or run.get("created_at") or None,
                "groupKey": f"{repo}/{branch}",
                "tags": tags,
                "metadata": {
                    "url": url,
                    "head_sha": sha,
                    "run_id": run_id,
                    "run_attempt": attempt,
                    "event": scalar_text(run, "event", "workflow_run.event"),
                    "path": path,
                    "pull_request": scalar_text(pull, "number", "pull_requests.number"),
                },
            }
        )
        return generic, (run_id, attempt)

    @staticmethod
    def _deployment_status(
        body: dict[str, Any], opts: GithubOptions, repo: str, tags: dict[str, str]
    ) -> tuple[GenericEvent, tuple[str, ...]]:
        status = object_field(body.get("deployment_status"), "deployment_status", required=True)
        deployment = object_field(body.get("deployment"), "deployment")
        state = scalar_text(status, "state", "deployment_status.state")
        if state not in opts.deployment_states:
            raise Dropped("not-a-failure")
        environment = scalar_text(
            status, "environment", "deployment_status.environment"
        ) or scalar_text(deployment, "environment", "deployment.environment")
        deployment_id = scalar_text(deployment, "id", "deployment.id") or scalar_text(
            status, "id", "deployment_status.id"
        )
        if not deployment_id:
            raise schema_error("deployment.id: required", "deployment.id")
        ref = scalar_text(deployment, "ref", "deployment.ref")
        sha = scalar_text(deployment, "sha", "deployment.sha")
        description = scalar_text(status, "description", "deployment_status.description")
        tags |= {"environment": environment, "state": state, "ref": ref}
        message = (
            f"GitHub deployment {deployment_id} of {repo} {ref or sha[:12] or '?'} to "
            f"{environment or '?'} ended in state {state}"
        )
        if description:
            message += f": {description}"
        generic = validate_generic(
            {
                "type": opts.event_type,
                "severity": "error",
                "reason": f"Deployment{state.title()}",
                "resource": {"kind": "GitHubEnvironment", "name": f"{repo}/{environment}"[:253]},
                "workload": opts.workload_of(repo, environment),
                "message": message,
                "id": f"deployment/{deployment_id}",
                "timestamp": status.get("updated_at") or status.get("created_at") or None,
                "firstTimestamp": deployment.get("created_at") or None,
                "groupKey": f"{repo}/{environment}",
                "tags": tags,
                "metadata": {
                    "url": scalar_text(status, "target_url", "deployment_status.target_url"),
                    "log_url": scalar_text(status, "log_url", "deployment_status.log_url"),
                    "sha": sha,
                    "task": scalar_text(deployment, "task", "deployment.task"),
                    "deployment_id": deployment_id,
                },
            }
        )
        return generic, (deployment_id, scalar_text(status, "id", "deployment_status.id"))


def _detect(raw: Any, attributes: Mapping[str, str]) -> Preset:
    """The ``auto`` endpoint's guess: the sender's headers first, then the body's shape."""
    if webhook_cloudevents.is_cloudevent(attributes) or (
        isinstance(raw, dict) and "specversion" in raw
    ):
        return "cloudevents"
    if _looks_like_github(raw, attributes):
        return "github"
    if isinstance(raw, dict) and isinstance(raw.get("alerts"), list) and "orgId" in raw:
        return "grafana"
    event = raw.get("event") if isinstance(raw, dict) else None
    if isinstance(event, dict) and "event_type" in event and "resource_type" in event:
        return "pagerduty"
    return "generic"


def _looks_like_github(raw: Any, attributes: Mapping[str, str]) -> bool:
    if "x-github-event" in attributes:
        return True
    return (
        isinstance(raw, dict)
        and "repository" in raw
        and any(k in raw for k in (*_GITHUB_EVENTS, "zen"))
    )
