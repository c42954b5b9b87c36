"""The ``webhook`` source: a documented generic JSON event, field mapping per endpoint, GitHub.

An endpoint is the first segment of the request path (``/`` is ``default``, ``/github`` is
``github``); each has its own preset and authentication settings in ``plugins.yaml``:

- ``generic``: the body is one event (or a list of up to ``MAX_BATCH``) in the schema of
  ``GenericEvent``, validated strictly so a typo is a 422 naming the field;
- ``github``: GitHub ``workflow_run`` and ``deployment_status`` failures → ``deployment-failed``;
- ``auto`` (the ``default`` endpoint): GitHub when the request looks like a GitHub delivery,
  generic otherwise;
- ``mapped``: ``rules`` written in the field-mapping language below, for any other JSON shape.

This module also owns that field-mapping language, because the kafka and cdc sources map their
records with the same rules: a ``FieldRule`` has ``when`` conditions and ``fields`` templates
(``"{topic}-{partition}"``, alternatives ``"{group|status.group}"``) whose output is validated
as a ``GenericEvent``. Templates only look values up; nothing is ever evaluated.

Every model here is built on first use (``defer_build``): the alertmanager source imports this
module for its helpers only and should not pay for schemas it never validates at cold start.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from khook_core.errors import InvalidEventError
from khook_core.event import Event, Resource, Severity, stable_id
from khook_core.sources.base import Dropped, SourceContext
from khook_core.timeparse import parse_time

SCHEMA_STATUS: Final = 422
"""Well-formed JSON that violates the schema: HTTP 422, as opposed to 400 for broken JSON."""
MAX_BATCH: Final = 100
"""Events in one generic request: a sender with more splits them, so one bad request stays small."""
MAX_TYPE_CHARS: Final = 63
"""An event type is a label-like identifier (hooks, mapping keys, dedup keys)."""
DEFAULT_ENDPOINT: Final = "default"
DEFAULT_MAX_BODY_BYTES: Final = 1024 * 1024
GITHUB_EVENT_TYPE: Final = "deployment-failed"

KEBAB_CASE: Final = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_ACRONYM_WORD = re.compile(r"([A-Z]+)([A-Z][a-z])")
_LOWER_UPPER = re.compile(r"([a-z0-9])([A-Z])")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def kebab_case(value: str) -> str:
    """``KubePodCrashLooping`` → ``kube-pod-crash-looping``; ``HTTP5xx`` → ``http5xx``.

    Event types are kebab-case everywhere (hooks, mapping keys), whatever the sender calls them.
    """
    text = _LOWER_UPPER.sub(r"\1-\2", _ACRONYM_WORD.sub(r"\1-\2", value))
    return _NON_ALNUM.sub("-", text.lower()).strip("-")


def schema_error(message: str, field: str | None = None) -> InvalidEventError:
    """A 422: the JSON parsed, but a field is missing or has the wrong shape."""
    return InvalidEventError(message, field=field, status=SCHEMA_STATUS)


# --------------------------------------------------------------------------------------------
# Paths and templates
# --------------------------------------------------------------------------------------------


class _Missing:
    """The value at a path that does not exist (distinct from JSON null)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


def lookup(doc: Any, path: str, meta: Mapping[str, Any] | None = None) -> Any:
    """The value at a dotted path (``a.b.0.c``), or ``MISSING``.

    A path starting with ``@`` reads transport metadata instead of the payload (``@topic``,
    ``@headers.x-github-event``); which names exist is documented by each source.
    """
    node: Any = doc
    if path.startswith("@"):
        node, path = (meta or {}), path[1:]
    if path in ("", "."):
        return node
    for part in path.split("."):
        if isinstance(node, Mapping):
            if part not in node:
                return MISSING
            node = node[part]
        elif isinstance(node, list) and part.lstrip("-").isdigit():
            index = int(part)
            if not -len(node) <= index < len(node):
                return MISSING
            node = node[index]
        else:
            return MISSING
    return node


def lookup_any(doc: Any, paths: str, meta: Mapping[str, Any] | None = None) -> Any:
    """The first present, non-null value of ``a|b|c`` alternatives, or ``MISSING``."""
    for path in paths.split("|"):
        value = lookup(doc, path.strip(), meta)
        if value is not MISSING and value is not None:
            return value
    return MISSING


def text_of(value: Any) -> str:
    """A JSON value as prompt-friendly text: strings as is, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_PATH = re.compile(r"^@?[A-Za-z0-9_$:/\-]+(?:\.[A-Za-z0-9_$:/\-]+)*$")


@dataclass(frozen=True)
class Template:
    """A field template: literal text and ``{path|alternative}`` lookups.

    A template that is exactly one placeholder yields the raw JSON value (so a number stays a
    number); otherwise the parts are joined as text. If any placeholder finds no value the whole
    template is ``MISSING``, so ``"{topic}-{partition}"`` never yields a half-filled ``"t-"``.
    """

    source: str
    parts: tuple[str | tuple[str, ...], ...]

    @classmethod
    def parse(cls, text: str) -> Template:
        parts: list[str | tuple[str, ...]] = []
        pos = 0
        for match in _PLACEHOLDER.finditer(text):
            if match.start() > pos:
                parts.append(text[pos:match.start()])
            alternatives = tuple(a.strip() for a in match[1].split("|"))
            bad = [a for a in alternatives if not _PATH.match(a)]
            if not alternatives or bad:
                raise ValueError(f"invalid path {bad[0] if bad else ''!r} in template {text!r}")
            parts.append(alternatives)
            pos = match.end()
        rest = text[pos:]
        literals = [p for p in (*parts, rest) if isinstance(p, str)]
        if any("{" in p or "}" in p for p in literals):
            raise ValueError(f"unbalanced braces in template {text!r}")
        if rest:
            parts.append(rest)
        return cls(text, tuple(parts))

    def render(self, doc: Any, meta: Mapping[str, Any] | None = None) -> Any:
        values: list[Any] = []
        for part in self.parts:
            if isinstance(part, str):
                values.append(part)
                continue
            found = lookup_any(doc, "|".join(part), meta)
            if found is MISSING:
                return MISSING
            values.append(found)
        if len(self.parts) == 1 and isinstance(self.parts[0], tuple):
            return values[0]
        return "".join(text_of(v) for v in values)


# --------------------------------------------------------------------------------------------
# Conditions
# --------------------------------------------------------------------------------------------

_OPS: Final = ("eq", "ne", "in", "notIn", "gt", "gte", "lt", "lte", "exists", "contains")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def same_value(a: Any, b: Any) -> bool:
    """JSON equality, but strings compare case-insensitively (``FAILED`` is ``failed``)."""
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None:
        return na == nb
    return bool(a == b) if type(a) is type(b) else False


def _compare(op: str, value: Any, operand: Any) -> bool:
    if op == "exists":
        return (value is not MISSING) is bool(operand)
    if value is MISSING:
        return op in ("ne", "notIn")
    if op == "eq":
        return same_value(value, operand)
    if op == "ne":
        return not same_value(value, operand)
    if op == "in":
        return any(same_value(value, o) for o in operand)
    if op == "notIn":
        return not any(same_value(value, o) for o in operand)
    if op == "contains":
        if isinstance(value, str) and isinstance(operand, str):
            return operand.casefold() in value.casefold()
        return isinstance(value, list) and any(same_value(v, operand) for v in value)
    left, right = _number(value), _number(operand)
    if left is None or right is None or math.isnan(left):
        return False
    return {"gt": left > right, "gte": left >= right, "lt": left < right, "lte": left <= right}[op]


@dataclass(frozen=True)
class Condition:
    """One ``when`` entry: the value at ``path`` compared with ``operand`` by ``op``."""

    path: str
    op: str
    operand: Any

    @classmethod
    def compile(cls, path: str, spec: Any) -> list[Condition]:
        """``{"lag": {"gte": 1000}}``, ``{"state": ["a", "b"]}`` (in) or ``{"leader": -1}`` (eq)."""
        if not all(_PATH.match(p.strip()) for p in path.split("|")):
            raise ValueError(f"invalid path {path!r}")
        if isinstance(spec, list):
            return [cls(path, "in", spec)]
        if not isinstance(spec, dict):
            return [cls(path, "eq", spec)]
        conditions = []
        for op, operand in spec.items():
            if op not in _OPS:
                raise ValueError(f"{path}: unknown operator {op!r} (known: {', '.join(_OPS)})")
            if op in ("in", "notIn") and not isinstance(operand, list):
                raise ValueError(f"{path}: {op} takes a list")
            if op in ("gt", "gte", "lt", "lte") and _number(operand) is None:
                raise ValueError(f"{path}: {op} takes a number")
            conditions.append(cls(path, op, operand))
        return conditions

    def test(self, doc: Any, meta: Mapping[str, Any] | None = None) -> bool:
        return _compare(self.op, lookup_any(doc, self.path, meta), self.operand)


# --------------------------------------------------------------------------------------------
# The generic event schema
# --------------------------------------------------------------------------------------------

SEVERITY_ALIASES: Final[dict[str, Severity]] = {
    "info": Severity.INFO, "information": Severity.INFO, "informational": Severity.INFO,
    "notice": Severity.INFO, "low": Severity.INFO, "none": Severity.INFO, "debug": Severity.INFO,
    "warning": Severity.WARNING, "warn": Severity.WARNING, "medium": Severity.WARNING,
    "moderate": Severity.WARNING,
    "error": Severity.ERROR, "err": Severity.ERROR, "high": Severity.ERROR, "major": Severity.ERROR,
    "critical": Severity.CRITICAL, "crit": Severity.CRITICAL, "fatal": Severity.CRITICAL,
    "emergency": Severity.CRITICAL, "page": Severity.CRITICAL, "disaster": Severity.CRITICAL,
}


def severity_of(value: Any) -> Severity | None:
    """A severity from common spellings (``warn``, ``high``, ``P1`` is not guessed), else None."""
    return SEVERITY_ALIASES.get(value.strip().lower()) if isinstance(value, str) else None


def time_of(value: Any, field: str) -> datetime | None:
    """RFC 3339 text or Unix time (seconds, or milliseconds when larger than 10^11)."""
    if isinstance(value, bool):
        raise schema_error(f"{field} must be an RFC 3339 string or a Unix time", field)
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        try:
            seconds = float(value) / 1000 if abs(value) > 1e11 else float(value)
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise schema_error(f"{field} is not a valid Unix time: {value!r}", field) from exc
    try:
        return parse_time(value, field)
    except InvalidEventError as exc:
        raise schema_error(exc.message, field) from exc


class GenericResource(BaseModel):
    """What the event is about."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)

    kind: str = Field(default="", max_length=253)
    name: str = Field(default="", max_length=253)
    namespace: str = Field(default="", max_length=253)
    uid: str = Field(default="", max_length=253)
    api_version: str = Field(default="", alias="apiVersion", max_length=253)


class GenericEvent(BaseModel):
    """The documented generic event (docs/sources-builtin.md, "webhook").

    Only ``type`` is required. ``id`` is the sender's identifier of this occurrence: resending
    the same ``id`` is a duplicate; without one, repeats of the same type on the same resource
    are duplicates for the hook's dedup window (khook's rule).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)

    type: str = Field(min_length=1, max_length=MAX_TYPE_CHARS, pattern=KEBAB_CASE.pattern)
    resource: GenericResource = Field(default_factory=GenericResource)
    message: str = ""
    reason: str = Field(default="", max_length=1024)
    severity: Severity | None = None
    status: Literal["firing", "resolved"] = "firing"
    timestamp: datetime | None = None
    first_timestamp: datetime | None = Field(default=None, alias="firstTimestamp")
    count: int = Field(default=1, ge=1)
    id: str = Field(default="", max_length=512)
    group_key: str = Field(default="", alias="groupKey", max_length=1024)
    tags: dict[str, str] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("resource", mode="before")
    @classmethod
    def _resource_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, value: Any) -> Any:
        if value is None or isinstance(value, Severity):
            return value
        found = severity_of(value)
        if found is None:
            raise ValueError(f"unknown severity {value!r} (use info, warning, error or critical)")
        return found

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("timestamp", "first_timestamp", mode="before")
    @classmethod
    def _time(cls, value: Any) -> Any:
        try:
            return time_of(value, "timestamp")
        except InvalidEventError as exc:
            raise ValueError(exc.message.removeprefix("timestamp ")) from None


def validate_generic(data: Any, where: str = "") -> GenericEvent:
    """Validate one generic event; every violation becomes a 422 naming the first field."""
    try:
        return GenericEvent.model_validate(data)
    except ValidationError as exc:
        problems = []
        first: str | None = None
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) if err["loc"] else "(body)"
            first = first or loc
            msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{where}{loc}: {msg}")
        raise schema_error("; ".join(problems), f"{where}{first}") from None


def to_event(
    generic: GenericEvent, *, source: str, id_parts: tuple[object, ...], now: datetime,
    raw_ref: str = "", metadata: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
) -> Event:
    """Build the Event. Without a ``severity`` the event is ``info`` so the mapping row decides."""
    r = generic.resource
    return Event(
        id=stable_id(source, *id_parts),
        source=source,
        type=generic.type,
        severity=generic.severity or Severity.INFO,
        resource=Resource(kind=r.kind, name=r.name, namespace=r.namespace, uid=r.uid,
                          api_version=r.api_version),
        reason=generic.reason,
        message=generic.message,
        timestamp=generic.timestamp or now,
        first_timestamp=generic.first_timestamp,
        count=generic.count,
        status=generic.status,
        occurrence=generic.id,
        group_key=generic.group_key,
        tags={**(tags or {}), **generic.tags},
        metadata={**(metadata or {}), **generic.metadata},
        raw_ref=raw_ref,
    )


def decode_value(raw: Any) -> Any:
    """A Pub/Sub payload as JSON when it is JSON, else as text; bytes must be UTF-8.

    Newline-delimited JSON (several documents in one message) becomes a list.
    """
    if isinstance(raw, bytes | bytearray | memoryview):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidEventError("the message data is neither JSON nor UTF-8 text",
                                    field="data") from exc
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    if text[:1] not in ("{", "["):
        return raw
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > 1:
        try:
            return [json.loads(line) for line in lines]
        except (ValueError, RecursionError):
            pass
    return raw


def content_digest(value: Any) -> str:
    """A digest of a JSON value that ignores key order: the identity of a payload without an id."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:24]


# --------------------------------------------------------------------------------------------
# Field rules (shared with kafka and cdc)
# --------------------------------------------------------------------------------------------

_STRING_FIELDS: Final = {"message", "reason", "id", "groupKey", "resource.kind", "resource.name",
                         "resource.namespace", "resource.uid", "resource.apiVersion"}
_VALUE_FIELDS: Final = {"type", "severity", "status", "timestamp", "firstTimestamp", "count",
                        "resource", "tags", "metadata"}


def _check_field_key(key: str) -> None:
    if key in _STRING_FIELDS or key in _VALUE_FIELDS:
        return
    if key.startswith(("tags.", "metadata.")) and key.split(".", 1)[1]:
        return
    known = [*sorted(_STRING_FIELDS | _VALUE_FIELDS), "tags.<name>", "metadata.<name>"]
    raise ValueError(f"unknown event field {key!r} (known: {', '.join(known)})")


class FieldRule(BaseModel):
    """``when`` the conditions hold, build an event from ``fields`` templates.

    Example::

        when: {lag: {gte: 1000}}
        eventType: consumer-lag
        fields: {resource.name: "{group}", message: "lag {lag} on {topic}", tags.topic: "{topic}"}
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)

    when: dict[str, Any] = Field(default_factory=dict)
    """path → value (equal), list (one of) or ``{gte: 5}``-style operators; all must hold."""
    event_type: str | None = Field(default=None, alias="eventType", pattern=KEBAB_CASE.pattern)
    """A fixed event type; otherwise ``fields.type`` (kebab-cased, after ``typeMap``)."""
    fields: dict[str, str] = Field(default_factory=dict)
    """Event field → template."""
    severity: Severity | None = None
    """A fixed severity; otherwise ``fields.severity`` (after ``severityMap``)."""
    severity_map: dict[str, Severity] = Field(default_factory=dict, alias="severityMap")
    type_map: dict[str, str] = Field(default_factory=dict, alias="typeMap")

    _conditions: tuple[Condition, ...] = PrivateAttr(default=())
    _templates: dict[str, Template] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _compile(self) -> FieldRule:
        conditions: list[Condition] = []
        for path, spec in self.when.items():
            conditions.extend(Condition.compile(path, spec))
        for key in self.fields:
            _check_field_key(key)
        for raw, mapped in self.type_map.items():
            if not KEBAB_CASE.match(mapped):
                raise ValueError(f"typeMap[{raw!r}]: {mapped!r} is not a kebab-case event type")
        self._conditions = tuple(conditions)
        self._templates = {key: Template.parse(text) for key, text in self.fields.items()}
        return self

    def matches(self, doc: Any, meta: Mapping[str, Any] | None = None) -> bool:
        return all(c.test(doc, meta) for c in self._conditions)

    def render(self, doc: Any, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The generic-event dict described by ``fields``; ``validate_generic`` checks it."""
        out: dict[str, Any] = {}
        for key, template in self._templates.items():
            value = template.render(doc, meta)
            if value is MISSING or value is None:
                continue
            _assign(out, key, value)
        if self.event_type:
            out["type"] = self.event_type
        elif "type" in out:
            raw = text_of(out["type"])
            out["type"] = self.type_map.get(raw) or kebab_case(raw)[:MAX_TYPE_CHARS].strip("-")
        else:
            where = ""
            if "type" in self.fields:
                where = f" (template {self.fields['type']!r} found no value)"
            raise schema_error(f"type: no event type{where}", "type")
        if self.severity is not None:
            out["severity"] = self.severity
        elif "severity" in out:
            mapped = self.severity_map.get(text_of(out["severity"]))
            out["severity"] = mapped or severity_of(out["severity"]) or out["severity"]
        return out


def _assign(out: dict[str, Any], key: str, value: Any) -> None:
    if key in _STRING_FIELDS:
        value = text_of(value)
    if key in ("tags", "metadata"):
        if not isinstance(value, dict):
            raise schema_error(f"{key}: expected an object, got {type(value).__name__}", key)
        if key == "tags":
            value = {str(k): text_of(v) for k, v in value.items()}
        out.setdefault(key, {}).update(value)
        return
    head, _, rest = key.partition(".")
    if not rest:
        out[key] = value
        return
    if head == "tags":
        value = text_of(value)
    out.setdefault(head, {})
    if isinstance(out[head], dict):
        out[head][rest] = value


def first_match(
    rules: list[Any], doc: Any, meta: Mapping[str, Any] | None = None,
    applies: Callable[[Any], bool] = lambda _rule: True,
) -> Any | None:
    """The first rule that applies and whose ``when`` holds."""
    return next((r for r in rules if applies(r) and r.matches(doc, meta)), None)


def glob_match(pattern: str, *names: str) -> bool:
    """Case-sensitive shell-style match of any of ``names`` (``orders.*``, ``*``)."""
    return any(fnmatch.fnmatchcase(name, pattern) for name in names if name)


# --------------------------------------------------------------------------------------------
# The webhook source
# --------------------------------------------------------------------------------------------


class GithubOptions(BaseModel):
    """What counts as a failure in GitHub deliveries."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)

    event_type: str = Field(default=GITHUB_EVENT_TYPE, alias="eventType",
                            pattern=KEBAB_CASE.pattern)
    workflows: list[str] | None = None
    """Only these workflow names (glob patterns); all workflows when unset."""
    conclusions: list[str] = Field(
        default_factory=lambda: ["failure", "timed_out", "startup_failure"])
    """``workflow_run.conclusion`` values that are failures."""
    deployment_states: list[str] = Field(default_factory=lambda: ["failure", "error"],
                                         alias="deploymentStates")
    """``deployment_status.state`` values that are failures."""


Preset = Literal["auto", "generic", "github", "mapped"]


class EndpointConfig(BaseModel):
    """One endpoint (``plugins.yaml`` → ``config.endpoints.<name>``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)

    preset: Preset | None = None
    """``auto`` (default), ``generic``, ``github`` or ``mapped`` (implied by ``rules``)."""
    rules: list[FieldRule] = Field(default_factory=list)
    """For ``mapped``: the first rule whose ``when`` holds builds the event."""
    github: GithubOptions = Field(default_factory=GithubOptions)
    auth: Literal["any", "bearer", "hmac"] = "any"
    """Which credential this endpoint accepts: a bearer token, an HMAC signature, or either."""
    signature_header: str | None = Field(default=None, alias="signatureHeader")
    """Header carrying ``sha256=<hex>``; default X-Hub-Signature-256 or X-Signature-256."""
    timestamp_header: str | None = Field(default=None, alias="timestampHeader")
    """When set, the header is required, must be within the replay window, and is signed
    (HMAC over ``<timestamp>.<body>``)."""
    replay_window_seconds: float = Field(default=300, gt=0, alias="replayWindowSeconds")
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, gt=0, le=32 * 1024 * 1024,
                                alias="maxBodyBytes")

    @model_validator(mode="after")
    def _preset(self) -> EndpointConfig:
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


def _dict(value: Any, field: str, *, required: bool = False) -> dict[str, Any]:
    if value is None or value is MISSING:
        if required:
            raise schema_error(f"{field}: required object is missing", field)
        return {}
    if not isinstance(value, dict):
        raise schema_error(f"{field} must be an object, got {type(value).__name__}", field)
    return value


def _str(obj: Mapping[str, Any], key: str, field: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise schema_error(f"{field} must be a string, got {type(value).__name__}", field)
    return str(value)


class WebhookSource:
    """Normalises one webhook request body into events, by endpoint."""

    name: ClassVar[str] = "webhook"
    version: ClassVar[str] = "1.0.0"
    event_types: ClassVar[tuple[str, ...]] = (GITHUB_EVENT_TYPE,)
    config_model: ClassVar[type[BaseModel] | None] = WebhookConfig

    def __init__(self, config: BaseModel | None, context: SourceContext) -> None:
        cfg = config if isinstance(config, WebhookConfig) else WebhookConfig()
        self.context = context
        self.endpoints: dict[str, EndpointConfig] = {
            DEFAULT_ENDPOINT: EndpointConfig(preset="auto"),
            "github": EndpointConfig(preset="github", auth="hmac"),
            **cfg.endpoints,
        }

    def endpoint(self, path: str) -> tuple[str, EndpointConfig]:
        """The endpoint for a request path (its first segment; ``/`` is ``default``)."""
        name = path.strip("/").split("/", 1)[0] or DEFAULT_ENDPOINT
        config = self.endpoints.get(name)
        if config is None:
            raise InvalidEventError(
                f"unknown webhook endpoint {name!r} "
                f"(configured: {', '.join(sorted(self.endpoints))})", field="path", status=404)
        return name, config

    def http_options(self, path: str) -> dict[str, Any]:
        """Per-endpoint HTTP settings, read by ``khook_core.transport.http``."""
        _, cfg = self.endpoint(path)
        options: dict[str, Any] = {"auth": cfg.auth, "max_body_bytes": cfg.max_body_bytes,
                                   "replay_window_seconds": cfg.replay_window_seconds,
                                   "timestamp_header": cfg.timestamp_header}
        if cfg.signature_header:
            options["signature_headers"] = (cfg.signature_header,)
        return options

    def normalize(self, raw: Any, attributes: Mapping[str, str]) -> list[Event]:
        path = attributes.get("khook.endpoint") or attributes.get("http.path", "/")
        name, cfg = self.endpoint(path)
        preset = cfg.preset
        if preset == "auto":
            preset = "github" if _looks_like_github(raw, attributes) else "generic"
        raw_ref = f"webhook:{name}:{attributes.get('http.request_id', '')}".rstrip(":")
        if preset == "github":
            return [self._github(raw, attributes, cfg.github, name, raw_ref)]
        items = raw if isinstance(raw, list) else [raw]
        if not items:
            raise Dropped("empty-batch")
        if len(items) > MAX_BATCH:
            raise schema_error(f"(body): at most {MAX_BATCH} events per request, got {len(items)}",
                               "(body)")
        events = []
        for index, item in enumerate(items):
            where = f"[{index}]." if isinstance(raw, list) else ""
            if preset == "mapped":
                event = self._mapped(item, attributes, cfg, name, raw_ref, where)
            else:
                if not isinstance(item, dict):
                    raise schema_error(f"{where or '(body)'}: an event must be a JSON object, "
                                       f"got {type(item).__name__}", where.rstrip(".") or "(body)")
                generic = validate_generic(item, where)
                event = to_event(generic, source=self.name, now=self.context.clock(),
                                 raw_ref=raw_ref, metadata={"endpoint": name},
                                 id_parts=(name, generic.id or content_digest(item)))
            if event is not None:
                events.append(event)
        if not events:
            raise Dropped("no-rule")
        return events

    def _mapped(
        self, item: Any, attributes: Mapping[str, str], cfg: EndpointConfig, name: str,
        raw_ref: str, where: str,
    ) -> Event | None:
        meta = {"endpoint": name, "headers": dict(attributes)}
        rule = first_match(cfg.rules, item, meta)
        if rule is None:
            return None
        data = rule.render(item, meta)
        generic = validate_generic(data, where)
        return to_event(generic, source=self.name, now=self.context.clock(), raw_ref=raw_ref,
                        id_parts=(name, generic.id or content_digest(item)),
                        metadata={"endpoint": name})

    def _github(
        self, raw: Any, attributes: Mapping[str, str], opts: GithubOptions, endpoint: str,
        raw_ref: str,
    ) -> Event:
        body = _dict(raw, "(body)", required=True)
        kind = attributes.get("x-github-event") or next(
            (k for k in ("workflow_run", "deployment_status", "zen") if k in body), "")
        if kind in ("ping", "zen"):
            raise Dropped("ping")
        if kind not in _GITHUB_EVENTS:
            raise Dropped("unsupported-github-event")
        repo = _dict(body.get("repository"), "repository", required=True)
        repo_name = (_str(repo, "full_name", "repository.full_name")
                     or _str(repo, "name", "repository.name"))
        if not repo_name:
            raise schema_error("repository.full_name: required", "repository.full_name")
        sender = _str(_dict(body.get("sender"), "sender"), "login", "sender.login")
        delivery = attributes.get("x-github-delivery", "")
        tags = {"repository": repo_name, "github_event": kind}
        if sender:
            tags["sender"] = sender
        if kind == "workflow_run":
            generic, ids = self._workflow_run(body, opts, repo_name, tags)
        else:
            generic, ids = self._deployment_status(body, opts, repo_name, tags)
        return to_event(generic, source=self.name, now=self.context.clock(), raw_ref=raw_ref,
                        id_parts=(endpoint, kind, *ids),
                        metadata={"endpoint": endpoint, "github_delivery": delivery})

    @staticmethod
    def _workflow_run(
        body: dict[str, Any], opts: GithubOptions, repo: str, tags: dict[str, str]
    ) -> tuple[GenericEvent, tuple[str, ...]]:
        run = _dict(body.get("workflow_run"), "workflow_run", required=True)
        action = _str(body, "action", "action")
        conclusion = _str(run, "conclusion", "workflow_run.conclusion")
        definition = _dict(body.get("workflow"), "workflow")
        workflow = (_str(run, "name", "workflow_run.name")
                    or _str(definition, "name", "workflow.name"))
        path = _str(run, "path", "workflow_run.path") or _str(definition, "path", "workflow.path")
        if action and action != "completed":
            raise Dropped("not-completed")
        if conclusion not in opts.conclusions:
            raise Dropped("not-a-failure")
        if opts.workflows is not None and not any(glob_match(p, workflow) for p in opts.workflows):
            raise Dropped("workflow-not-selected")
        run_id = _str(run, "id", "workflow_run.id")
        if not run_id:
            raise schema_error("workflow_run.id: required", "workflow_run.id")
        attempt = _str(run, "run_attempt", "workflow_run.run_attempt") or "1"
        branch = _str(run, "head_branch", "workflow_run.head_branch")
        sha = _str(run, "head_sha", "workflow_run.head_sha")
        url = _str(run, "html_url", "workflow_run.html_url")
        number = _str(run, "run_number", "workflow_run.run_number")
        title = _str(run, "display_title", "workflow_run.display_title")
        tags |= {"workflow": workflow, "conclusion": conclusion, "branch": branch}
        message = (f"GitHub workflow {workflow!r} run #{number or run_id} (attempt {attempt}) in "
                   f"{repo} on {branch or '?'} at {sha[:12] or '?'} concluded {conclusion}")
        if title:
            message += f": {title}"
        generic = validate_generic({
            "type": opts.event_type, "severity": "error",
            "reason": f"WorkflowRun{conclusion.title().replace('_', '')}",
            # The file path identifies the workflow (names may repeat) and is prompt-safe.
            "resource": {"kind": "GitHubWorkflow", "name": f"{repo}/{path or workflow}"[:253]},
            "message": message, "id": f"workflow_run/{run_id}/{attempt}",
            "timestamp": run.get("updated_at") or None,
            "firstTimestamp": run.get("run_started_at") or run.get("created_at") or None,
            "groupKey": f"{repo}/{branch}", "tags": tags,
            "metadata": {"url": url, "head_sha": sha, "run_id": run_id, "run_attempt": attempt,
                         "event": _str(run, "event", "workflow_run.event"), "path": path},
        })
        return generic, (run_id, attempt)

    @staticmethod
    def _deployment_status(
        body: dict[str, Any], opts: GithubOptions, repo: str, tags: dict[str, str]
    ) -> tuple[GenericEvent, tuple[str, ...]]:
        status = _dict(body.get("deployment_status"), "deployment_status", required=True)
        deployment = _dict(body.get("deployment"), "deployment")
        state = _str(status, "state", "deployment_status.state")
        if state not in opts.deployment_states:
            raise Dropped("not-a-failure")
        environment = (_str(status, "environment", "deployment_status.environment")
                       or _str(deployment, "environment", "deployment.environment"))
        deployment_id = _str(deployment, "id", "deployment.id") or _str(
            status, "id", "deployment_status.id")
        if not deployment_id:
            raise schema_error("deployment.id: required", "deployment.id")
        ref = _str(deployment, "ref", "deployment.ref")
        sha = _str(deployment, "sha", "deployment.sha")
        description = _str(status, "description", "deployment_status.description")
        tags |= {"environment": environment, "state": state, "ref": ref}
        message = (f"GitHub deployment {deployment_id} of {repo} {ref or sha[:12] or '?'} to "
                   f"{environment or '?'} ended in state {state}")
        if description:
            message += f": {description}"
        generic = validate_generic({
            "type": opts.event_type, "severity": "error", "reason": f"Deployment{state.title()}",
            "resource": {"kind": "GitHubEnvironment", "name": f"{repo}/{environment}"[:253]},
            "message": message, "id": f"deployment/{deployment_id}",
            "timestamp": status.get("updated_at") or status.get("created_at") or None,
            "firstTimestamp": deployment.get("created_at") or None,
            "groupKey": f"{repo}/{environment}", "tags": tags,
            "metadata": {"url": _str(status, "target_url", "deployment_status.target_url"),
                         "log_url": _str(status, "log_url", "deployment_status.log_url"),
                         "sha": sha, "task": _str(deployment, "task", "deployment.task"),
                         "deployment_id": deployment_id},
        })
        return generic, (deployment_id, _str(status, "id", "deployment_status.id"))


def _looks_like_github(raw: Any, attributes: Mapping[str, str]) -> bool:
    if "x-github-event" in attributes:
        return True
    return isinstance(raw, dict) and "repository" in raw and any(
        k in raw for k in (*_GITHUB_EVENTS, "zen"))
