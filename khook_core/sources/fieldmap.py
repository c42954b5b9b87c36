"""The field-mapping language and the generic event it produces, shared by the JSON sources.

The webhook (``mapped`` endpoints), kafka and cdc sources turn payloads they do not own into
events with the same rules, so the language lives here rather than in any one of them:

- paths (``a.b.0.c``, ``@topic`` for transport metadata) and ``lookup``;
- ``Template``: field templates (``"{topic}-{partition}"``, alternatives
  ``"{group|status.group}"``) that only look values up; nothing is ever evaluated;
- ``Condition``: one ``when`` entry (``{"lag": {"gte": 1000}}``);
- ``FieldRule``: ``when`` conditions (those entries, or one CEL expression over ``payload`` and
  ``meta``, see ``khook_core.conditions``) plus ``fields`` templates, rendered to a
  generic-event dict;
- ``GenericEvent``: the documented generic event schema a rule's output (and a ``generic``
  webhook body) is validated against, strictly, so a typo is a 422 naming the field, and
  ``to_event`` building the ``Event`` from it;
- payload helpers the Pub/Sub-fed sources share (``decode_value``, ``content_digest``), and the
  small normalisers every source may use (``kebab_case``, ``severity_of``, ``time_of``,
  ``schema_error``).

It knows no source: nothing here reads a source's configuration or transport, and it imports no
other source module. Every model here is built on first use (``defer_build``): the alertmanager
source imports this module for its helpers only and should not pay for schemas it never
validates at cold start.
"""

import fnmatch
import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from khook_core import jsontext
from khook_core.errors import InvalidEventError
from khook_core.event import Event, Resource, Severity, Workload, stable_id
from khook_core.sources import jsonwords
from khook_core.sources.jsonwords import json_type
from khook_core.timeparse import parse_time

if TYPE_CHECKING:
    from khook_core.conditions.compiled import Condition as CelCondition

SCHEMA_STATUS: Final = 422
"""Well-formed JSON that violates the schema: HTTP 422, as opposed to 400 for broken JSON."""
MAX_TYPE_CHARS: Final = 63
"""An event type is a label-like identifier (hooks, mapping keys, dedup keys)."""

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


def scalar_text(obj: Mapping[str, Any], key: str, field: str) -> str:
    """``obj[key]`` as text: a string or a number; missing or null is ""; anything else is a
    schema error naming ``field``."""
    value = obj.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise schema_error(f"{field}: expected a string or number, got {json_type(value)}", field)
    return str(value)


# --------------------------------------------------------------------------------------------
# Paths and templates
# --------------------------------------------------------------------------------------------


class _Missing:
    """The value at a path that does not exist (distinct from JSON null)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


def object_field(value: Any, field: str, *, required: bool = False) -> dict[str, Any]:
    """``value`` as a JSON object: missing (absent, null or ``MISSING``) is ``{}``, or a schema
    error when ``required``; anything else that is not an object is a schema error naming
    ``field``."""
    if value is None or value is MISSING:
        if required:
            raise schema_error(f"{field}: required object is missing", field)
        return {}
    if not isinstance(value, dict):
        raise schema_error(f"{field}: expected an object, got {json_type(value)}", field)
    return value


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
        elif isinstance(node, list) and part.isascii() and part.lstrip("-").isdigit():
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
    def parse(cls, text: str) -> "Template":
        parts: list[str | tuple[str, ...]] = []
        pos = 0
        for match in _PLACEHOLDER.finditer(text):
            if match.start() > pos:
                parts.append(text[pos : match.start()])
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
    def compile(cls, path: str, spec: Any) -> "list[Condition]":
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
    "info": Severity.INFO,
    "information": Severity.INFO,
    "informational": Severity.INFO,
    "notice": Severity.INFO,
    "low": Severity.INFO,
    "none": Severity.INFO,
    "debug": Severity.INFO,
    "warning": Severity.WARNING,
    "warn": Severity.WARNING,
    "medium": Severity.WARNING,
    "moderate": Severity.WARNING,
    "error": Severity.ERROR,
    "err": Severity.ERROR,
    "high": Severity.ERROR,
    "major": Severity.ERROR,
    "critical": Severity.CRITICAL,
    "crit": Severity.CRITICAL,
    "fatal": Severity.CRITICAL,
    "emergency": Severity.CRITICAL,
    "page": Severity.CRITICAL,
    "disaster": Severity.CRITICAL,
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


class GenericWorkload(BaseModel):
    """The workload the event is about; events about one workload correlate into one incident."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)

    cluster: str = Field(default="", max_length=253)
    namespace: str = Field(default="", max_length=253)
    kind: str = Field(default="", max_length=253)
    name: str = Field(default="", max_length=253)


class GenericEvent(BaseModel):
    """The documented generic event (docs/sources-builtin.md, "webhook").

    Only ``type`` is required. ``id`` is the sender's identifier of this occurrence: resending
    the same ``id`` is a duplicate; without one, repeats of the same type on the same resource
    are duplicates for the hook's dedup window (khook's rule).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)

    type: str = Field(min_length=1, max_length=MAX_TYPE_CHARS, pattern=KEBAB_CASE.pattern)
    resource: GenericResource = Field(default_factory=GenericResource)
    workload: GenericWorkload = Field(default_factory=GenericWorkload)
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
            loc = jsonwords.json_path(err["loc"], where.rstrip(".")) or "(body)"
            first = first or loc
            problems.append(f"{loc}: {jsonwords.message(err)}")
        raise schema_error("; ".join(problems), first) from None


def to_event(
    generic: GenericEvent,
    *,
    source: str,
    id_parts: tuple[object, ...],
    now: datetime,
    raw_ref: str = "",
    metadata: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
) -> Event:
    """Build the Event. Without a ``severity`` the event is ``info`` so the mapping row decides."""
    r, w = generic.resource, generic.workload
    return Event(
        id=stable_id(source, *id_parts),
        source=source,
        type=generic.type,
        severity=generic.severity or Severity.INFO,
        resource=Resource(
            kind=r.kind, name=r.name, namespace=r.namespace, uid=r.uid, api_version=r.api_version
        ),
        workload=Workload(cluster=w.cluster, namespace=w.namespace, kind=w.kind, name=w.name),
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


# --------------------------------------------------------------------------------------------
# Payloads
# --------------------------------------------------------------------------------------------


def decode_value(raw: Any) -> Any:
    """A Pub/Sub payload as JSON when it is JSON, else as text; bytes must be UTF-8.

    Newline-delimited JSON (several documents in one message) becomes a list. Text that is not
    JSON stays text, but JSON that ``jsontext.loads`` refuses (too deep, not finite, a lone
    surrogate) is an ``InvalidEventError``, as on every other parse path.
    """
    if isinstance(raw, bytes | bytearray | memoryview):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidEventError(
                "the message data is neither JSON nor UTF-8 text", field="data"
            ) from exc
    if not isinstance(raw, str):
        return raw
    text = raw.strip()
    if text[:1] not in ("{", "["):
        return raw
    try:
        return jsontext.loads(text, field="data")
    except jsontext.JsonLimitError:
        raise
    except InvalidEventError:
        pass
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > 1:
        try:
            return [jsontext.loads(line, field="data") for line in lines]
        except jsontext.JsonLimitError:
            raise
        except InvalidEventError:
            pass
    return raw


def content_digest(value: Any) -> str:
    """A digest of a JSON value that ignores key order: the identity of a payload without an id."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:24]


# --------------------------------------------------------------------------------------------
# Field rules
# --------------------------------------------------------------------------------------------

_STRING_FIELDS: Final = {
    "message",
    "reason",
    "id",
    "groupKey",
    "resource.kind",
    "resource.name",
    "resource.namespace",
    "resource.uid",
    "resource.apiVersion",
    "workload.cluster",
    "workload.namespace",
    "workload.kind",
    "workload.name",
}
_VALUE_FIELDS: Final = {
    "type",
    "severity",
    "status",
    "timestamp",
    "firstTimestamp",
    "count",
    "resource",
    "workload",
    "tags",
    "metadata",
}


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

    when: dict[str, Any] | str = Field(default_factory=dict)
    """path → value (equal), list (one of) or ``{gte: 5}``-style operators, all of which must
    hold; or a CEL condition over ``payload`` and ``meta`` (``"payload.lag >= 1000"``), which
    must be true (an evaluation error, such as a missing key, is false)."""
    event_type: str | None = Field(default=None, alias="eventType", pattern=KEBAB_CASE.pattern)
    """A fixed event type; otherwise ``fields.type`` (kebab-cased, after ``typeMap``)."""
    fields: dict[str, str] = Field(default_factory=dict)
    """Event field → template."""
    severity: Severity | None = None
    """A fixed severity; otherwise ``fields.severity`` (after ``severityMap``)."""
    severity_map: dict[str, Severity] = Field(default_factory=dict, alias="severityMap")
    type_map: dict[str, str] = Field(default_factory=dict, alias="typeMap")

    _conditions: tuple[Condition, ...] = PrivateAttr(default=())
    _cel: "CelCondition | None" = PrivateAttr(default=None)
    _templates: dict[str, Template] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _compile(self) -> "FieldRule":
        conditions: list[Condition] = []
        if isinstance(self.when, str):
            # Imported here: only rules written in CEL pay for it at cold start.
            from khook_core.conditions import compile_payload_condition

            self._cel = compile_payload_condition(self.when)  # ConditionSyntaxError: ValueError
        else:
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
        if self._cel is not None:
            from khook_core.conditions import ConditionError

            try:
                return self._cel((doc, meta or {}))
            except ConditionError:  # a missing key or a type mismatch: this rule does not apply
                return False
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
            raise schema_error(f"{key}: expected an object, got {json_type(value)}", key)
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
    rules: list[Any],
    doc: Any,
    meta: Mapping[str, Any] | None = None,
    applies: Callable[[Any], bool] = lambda _rule: True,
) -> Any | None:
    """The first rule that applies and whose ``when`` holds."""
    return next((r for r in rules if applies(r) and r.matches(doc, meta)), None)


def glob_match(pattern: str, *names: str) -> bool:
    """Case-sensitive shell-style match of any of ``names`` (``orders.*``, ``*``)."""
    return any(fnmatch.fnmatchcase(name, pattern) for name in names if name)
