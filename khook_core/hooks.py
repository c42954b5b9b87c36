"""Hooks: khook ``Hook`` documents (kagent.dev/v1alpha2), loaded unchanged, and matching.

A plain khook Hook means exactly what it meant in khook: a Hook in namespace N sees Kubernetes
events of namespace N, and each ``eventConfigurations`` entry whose ``eventType`` equals the
event's type is one match. Optional extensions (all documented in docs/hooks.md) widen or narrow
that: ``spec.namespaces``, ``spec.sources``, and per configuration ``reasons``, ``minSeverity``,
``matchTags``, ``when`` (a CEL condition, see ``khook_core.conditions``), ``dedupWindow``, and
a target other than a kagent agent (``agentUrl``, ``webhook``).
"""

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from khook_core import bodytemplate, conditions, prompt
from khook_core.catalog import DEFAULT_SOURCES, EventCatalog
from khook_core.configmodel import dotted, locate, validate
from khook_core.errors import ConfigError, Problem
from khook_core.event import Event, Severity
from khook_core.redaction.rules import PiiKind
from khook_core.reportconfig import ReportDestination, TaskFollowUp
from khook_core.storm.config import Coalesce, Correlate, RateLimit
from khook_core.target import Target
from khook_core.timeparse import parse_duration
from khook_core.yamlfile import line_of, line_within, load_documents

if TYPE_CHECKING:
    from khook_core.conditions.compiled import Condition

logger = logging.getLogger(__name__)

HOOK_API_VERSIONS = ("kagent.dev/v1alpha2",)
ALL_NAMESPACES = "*"


class AgentRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=253)
    namespace: str | None = None


class WebhookTarget(BaseModel):
    """Extension: POST a JSON body to ``url`` instead of calling an agent."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    url: str = Field(pattern=r"^https?://")
    body: dict[str, Any] | None = None
    """Body template; string values may use the prompt placeholders plus ``{{.Prompt}}``."""
    hmac_secret_env: str | None = Field(default=None, alias="hmacSecretEnv")
    """Environment variable holding the HMAC-SHA256 key for ``X-Signature-256``."""
    headers: dict[str, str] = Field(default_factory=dict)


class EventConfiguration(BaseModel):
    """One ``spec.eventConfigurations`` entry."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    event_type: str = Field(alias="eventType", min_length=1)
    agent_ref: AgentRef | None = Field(default=None, alias="agentRef")
    agent_id: str | None = Field(default=None, alias="agentId")
    """Legacy ``namespace/name`` form; read as agentRef with a deprecation warning."""
    agent_url: str | None = Field(default=None, alias="agentUrl", pattern=r"^https?://")
    """Extension: any A2A agent by URL."""
    webhook: WebhookTarget | None = None
    prompt: str = Field(min_length=1)
    reasons: list[str] | None = None
    """Extension: only events whose reason is in this list."""
    min_severity: Severity | None = Field(default=None, alias="minSeverity")
    """Extension: only events at or above this severity."""
    match_tags: dict[str, str] | None = Field(default=None, alias="matchTags")
    """Extension: only events carrying all these tags."""
    when: str | None = Field(
        default=None,
        min_length=1,
        max_length=conditions.MAX_CONDITION_CHARS,
        description="Extension: a CEL condition over `event` that must hold; checked when the "
        "hook loads. x-cel-variables lists the variables (docs/hooks.md, Conditions).",
        json_schema_extra=lambda schema: schema.update(
            {"x-cel-variables": conditions.event_variables()}
        ),
    )
    """Extension: a CEL condition over ``event`` that must hold (see ``conditions``)."""
    dedup_window: str | int | None = Field(default=None, alias="dedupWindow")
    """Extension: suppression window for this configuration (default 10m)."""
    rate_limit: RateLimit | None = Field(default=None, alias="rateLimit")
    """Extension: at most this many agent runs per window for this configuration."""
    coalesce: Coalesce | None = None
    """Extension: one run per group and window; the others are summarised in the next run."""
    correlate: Correlate | None = None
    """Extension: one incident per workload; later events join its conversation."""
    report: list[ReportDestination] | None = None
    """Extension: where the finding goes when the agent's task ends (``reportconfig``)."""
    task: TaskFollowUp | None = None
    """Extension: the agent task's deadline and whether to cancel it then (``tracking``)."""

    @field_validator("dedup_window")
    @classmethod
    def _duration(cls, value: str | int | None) -> str | int | None:
        if value is not None:
            parse_duration(value)
        return value


class HookRedact(BaseModel):
    """A Hook's ``spec.redact``: personal data its runs never see, whatever the source."""

    model_config = ConfigDict(extra="forbid")

    pii: list[PiiKind] = Field(min_length=1)
    """Personal data masked in everything this Hook's runs send and record: ``email``,
    ``phone``, ``ip`` (as a source's ``redact: {pii: …}`` does for all of its events)."""


class HookSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    eventConfigurations: list[EventConfiguration] = Field(min_length=1)
    namespaces: list[str] | None = None
    """Extension: namespaces whose events this Hook sees (``"*"`` = all); default its own."""
    sources: list[str] | None = None
    """Extension: sources this Hook sees; default ``[kubernetes]`` (``DEFAULT_SOURCES``)."""
    redact: HookRedact | None = None
    """Extension: what this Hook's runs mask on top of the redaction every event has."""


class HookMetadata(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1)
    namespace: str = "default"


class HookDocument(BaseModel):
    """A ``Hook`` resource as written in YAML (status, labels and annotations are ignored)."""

    model_config = ConfigDict(extra="allow")

    apiVersion: str
    kind: Literal["Hook"]
    metadata: HookMetadata
    spec: HookSpec


@dataclass(frozen=True)
class HookRule:
    """One compiled event configuration of one Hook: what to match and where to send."""

    hook: str  # namespace/name
    hook_namespace: str
    event_type: str
    target: Target
    template: prompt.Template
    namespaces: frozenset[str]
    sources: frozenset[str]
    namespaces_explicit: bool
    reasons: frozenset[str] | None = None
    min_severity: Severity | None = None
    match_tags: dict[str, str] | None = None
    dedup_window: timedelta | None = None  # None: the process default (10 minutes)
    rate_limit: RateLimit | None = None
    coalesce: Coalesce | None = None
    when: "Condition | None" = None
    file: str = ""
    correlate: Correlate | None = None
    index: int = 0
    report: tuple[ReportDestination, ...] = ()
    task: TaskFollowUp | None = None
    pii: tuple[PiiKind, ...] = ()
    """Personal data masked for this hook's runs (``spec.redact.pii``)."""
    needs_mapping: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        # Whether matching reads what the mapping row adds (severity, tags); asked per event.
        object.__setattr__(
            self,
            "needs_mapping",
            self.min_severity is not None
            or bool(self.match_tags)
            or (self.when is not None and self.when.needs_mapping),
        )

    def matches(self, event: Event) -> bool:
        """khook's rule (type, same namespace) plus the configured extensions."""
        if event.type != self.event_type or event.source not in self.sources:
            return False
        if (event.source == "kubernetes" or self.namespaces_explicit) and not (
            ALL_NAMESPACES in self.namespaces or event.resource.namespace in self.namespaces
        ):
            return False
        if self.reasons is not None and event.reason not in self.reasons:
            return False
        if self.min_severity is not None and event.severity.rank < self.min_severity.rank:
            return False
        if self.match_tags and not all(event.tags.get(k) == v for k, v in self.match_tags.items()):
            return False
        # Last, so the cheap filters decide first. Raises conditions.ConditionError when the
        # condition has no result for this event (the pipeline turns it into a decision).
        return self.when is None or self.when(event)


@dataclass
class HookSet:
    """All rules, indexed so that matching one event looks only at plausible rules.

    Kubernetes events are namespaced and most hooks watch one namespace, so rules are indexed by
    (event type, namespace); rules that see every namespace sit in a per-type list beside them.
    """

    rules: list[HookRule] = field(default_factory=list)
    by_type: dict[str, list[HookRule]] = field(default_factory=dict)
    _by_namespace: dict[tuple[str, str], list[HookRule]] = field(default_factory=dict)
    _any_namespace: dict[str, list[HookRule]] = field(default_factory=dict)
    _order: dict[int, int] = field(default_factory=dict)

    def add(self, rule: HookRule) -> None:
        self._order[id(rule)] = len(self.rules)
        self.rules.append(rule)
        self.by_type.setdefault(rule.event_type, []).append(rule)
        if ALL_NAMESPACES in rule.namespaces:
            self._any_namespace.setdefault(rule.event_type, []).append(rule)
        else:
            for namespace in rule.namespaces:
                self._by_namespace.setdefault((rule.event_type, namespace), []).append(rule)

    def candidates(self, event: Event) -> list[HookRule]:
        """Rules that may match ``event``, in file order (a superset of the matches)."""
        if event.source != "kubernetes":
            return self.by_type.get(event.type, [])
        # No default lists: most lookups find one of the two or neither, none builds a list.
        scoped = self._by_namespace.get((event.type, event.resource.namespace))
        anywhere = self._any_namespace.get(event.type)
        if not anywhere:
            return scoped or []
        if not scoped:
            return anywhere
        return sorted(scoped + anywhere, key=lambda rule: self._order[id(rule)])

    def match(self, event: Event) -> list[HookRule]:
        return [rule for rule in self.candidates(event) if rule.matches(event)]

    def hooks(self) -> list[str]:
        return sorted({rule.hook for rule in self.rules})


def load_hooks(
    paths: Iterable[Path], known_event_types: EventCatalog | Collection[str] | None
) -> HookSet:
    """Load every Hook document of the given files.

    Every independent problem of a hook is reported: a field pydantic rejects does not hide an
    unknown eventType, a missing agent or a bad placeholder elsewhere in the same hook.

    Args:
        known_event_types: an ``EventCatalog`` (each ``spec.sources`` name must exist, and each
            eventType must be produced by one of the hook's sources), or a plain collection of
            the event types hooks may name (any source); None skips these checks (the mapping
            table failed to load, so every type would look unknown).

    Raises:
        ConfigError: one Problem per invalid hook field, naming file, line, hook and field.
    """
    problems: list[Problem] = []
    hooks = HookSet()
    seen: set[str] = set()
    for path in paths:
        try:
            docs = load_documents(path)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        for doc in docs:
            for rule in _compile(doc, str(path), known_event_types, problems, seen):
                hooks.add(rule)
    if problems:
        raise ConfigError(problems)
    return hooks


def hook_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


_TARGET_KEYS = ("agentRef", "agent_ref", "agentId", "agent_id", "agentUrl", "agent_url", "webhook")
"""Every key (alias or field name) that names a configuration's target."""


Known = EventCatalog | Collection[str] | None
"""What the loader checks sources and event types against (see ``load_hooks``)."""


def _compile(
    doc: Any, file: str, known: Known, problems: list[Problem], seen: set[str]
) -> list[HookRule]:
    if isinstance(doc, dict) and doc.get("kind") not in (None, "Hook"):
        logger.info("%s: skipping a %s document (not a Hook)", file, doc.get("kind"))
        return []
    name = _hook_name(doc)
    hook = name or "<unnamed>"
    parsed = validate(HookDocument, doc, file, problems, prefix=f"hook {hook}: ")
    if name is not None:
        if name in seen:
            problems.append(Problem(file, line_of(doc), f"hook {name}: defined twice"))
            return []
        seen.add(name)
    api_version = doc.get("apiVersion") if isinstance(doc, dict) else None
    if isinstance(api_version, str) and api_version not in HOOK_API_VERSIONS:
        problems.append(
            Problem(
                file,
                locate(doc, ("apiVersion",)),
                f"hook {hook}: apiVersion {api_version!r} is not one of "
                f"{', '.join(HOOK_API_VERSIONS)}",
            )
        )
    sources = _check_sources(doc, hook, file, known, problems)
    # When pydantic rejected the document, each configuration is still checked on its own
    # (parsed alone when it can be, else on the raw fields that are usable).
    raw_confs = _raw_configurations(doc)
    hook_ns = parsed.metadata.namespace if parsed else _raw_namespace(doc)
    compiled: list[tuple[int, EventConfiguration, Target, prompt.Template, Condition | None]] = []
    types_seen: set[str] = set()
    for index, raw in enumerate(raw_confs):
        conf = parsed.spec.eventConfigurations[index] if parsed else _parse_alone(raw)
        loc: tuple[str | int, ...] = ("spec", "eventConfigurations", index)
        field_name = f"spec.eventConfigurations[{index}]"

        def problem(
            what: str,
            msg: str,
            path: tuple[str | int, ...] = (),
            line: int | None = None,
            _loc: tuple[str | int, ...] = loc,
            _field: str = field_name,
        ) -> None:
            where = (*_loc, what, *path)
            problems.append(
                Problem(
                    file,
                    line or locate(doc, where),
                    f"hook {hook}: {_field}.{dotted((what, *path))}: {msg}",
                )
            )

        checked = _check_configuration(
            raw, conf, hook, hook_ns, (known, sources), types_seen, problem
        )
        if checked is not None and conf is not None:
            compiled.append((index, conf, *checked))
    if parsed is None:
        return []
    return [
        _rule(parsed, hook, conf, (target, template, when), file, index)
        for index, conf, target, template, when in compiled
    ]


def _check_sources(
    doc: Any, hook: str, file: str, known: Known, problems: list[Problem]
) -> frozenset[str]:
    """The hook's known sources, after reporting each ``spec.sources`` name nothing has.

    Without ``spec.sources`` (or with an empty list) a Hook sees Kubernetes events, as in khook.
    """
    spec = doc.get("spec") if isinstance(doc, dict) else None
    raw = spec.get("sources") if isinstance(spec, dict) else None
    if raw is None or raw == []:
        return frozenset(DEFAULT_SOURCES)
    if not isinstance(raw, list):
        return frozenset()  # pydantic reports the type
    names = frozenset(n for n in raw if isinstance(n, str))
    if not isinstance(known, EventCatalog):
        return names
    for index, name in enumerate(raw):
        why = known.source_problem(name) if isinstance(name, str) else None
        if why is not None:
            problems.append(
                Problem(
                    file,
                    locate(doc, ("spec", "sources", index)),
                    f"hook {hook}: spec.sources[{index}]: {why}",
                )
            )
    return frozenset(n for n in names if n in known.sources)


def _event_type_problem(event_type: str, known: Known, sources: frozenset[str]) -> str | None:
    """Why no event of this type can reach the hook, or None (also when nothing is known)."""
    if known is None:
        return None
    if isinstance(known, EventCatalog):
        # With no known source left (each was reported), only the type itself is checked.
        return known.event_type_problem(event_type, sources or known.sources)
    if event_type in known:
        return None
    return f"unknown eventType {event_type!r} (known: {', '.join(sorted(known))})"


def _check_configuration(
    raw: Any,
    conf: EventConfiguration | None,
    hook: str,
    hook_ns: str,
    reach: tuple[Known, frozenset[str]],
    types_seen: set[str],
    problem: Any,
) -> "tuple[Target, prompt.Template, Condition | None] | None":
    """Target, template and condition of one configuration, after reporting each problem.

    ``conf`` is None when pydantic rejected this configuration; its raw fields that are still
    usable (eventType, prompt, whether any target is given) are checked all the same.
    ``reach`` is what the eventType is checked against: the known types or catalog, and the
    hook's (known) sources.
    """
    if not isinstance(raw, dict):
        return None
    ok = True
    event_type = conf.event_type if conf is not None else raw.get("eventType")
    if isinstance(event_type, str) and event_type:
        why = _event_type_problem(event_type, *reach)
        if why is not None:
            problem("eventType", why)
            ok = False
        elif event_type in types_seen:
            problem("eventType", f"duplicate eventType {event_type!r} in one Hook")
            ok = False
        else:
            types_seen.add(event_type)
    target: Target | None = None
    if conf is not None:
        target = _target(conf, hook_ns, hook, problem)
    elif all(raw.get(key) is None for key in _TARGET_KEYS):
        problem("agentRef", "no agent: set agentRef (or agentUrl / webhook)")
    template: prompt.Template | None = None
    text = conf.prompt if conf is not None else raw.get("prompt")
    if isinstance(text, str) and text:
        try:
            template = prompt.compile_template(text)
        except prompt.TemplateError as exc:
            for found in exc.problems:
                problem("prompt", found.message, line=_line_in_prompt(raw, text, found))
    when, when_ok = _condition(raw, conf, problem)
    if not ok or not when_ok or target is None or template is None:
        return None
    return target, template, when


def _condition(
    raw: dict[str, Any], conf: EventConfiguration | None, problem: Any
) -> "tuple[Condition | None, bool]":
    """The compiled ``when`` (None when absent), and whether it compiled."""
    text = conf.when if conf is not None else raw.get("when")
    if not isinstance(text, str) or not text:
        return None, True  # absent, or a type pydantic reports
    try:
        return conditions.compile_event_condition(text), True
    except conditions.ConditionSyntaxError as exc:
        problem("when", str(exc))
        return None, False


def _rule(
    parsed: HookDocument,
    hook: str,
    conf: EventConfiguration,
    compiled: "tuple[Target, prompt.Template, Condition | None]",
    file: str,
    index: int,
) -> HookRule:
    spec = parsed.spec
    target, template, when = compiled
    return HookRule(
        hook=hook,
        hook_namespace=parsed.metadata.namespace,
        event_type=conf.event_type,
        target=target,
        template=template,
        namespaces=frozenset(spec.namespaces or [parsed.metadata.namespace]),
        sources=frozenset(spec.sources or ["kubernetes"]),
        namespaces_explicit=spec.namespaces is not None,
        reasons=frozenset(conf.reasons) if conf.reasons is not None else None,
        min_severity=conf.min_severity,
        match_tags=conf.match_tags,
        rate_limit=conf.rate_limit,
        coalesce=conf.coalesce,
        correlate=conf.correlate,
        when=when,
        dedup_window=parse_duration(conf.dedup_window) if conf.dedup_window is not None else None,
        file=file,
        index=index,
        report=tuple(conf.report or ()),
        task=conf.task,
        pii=tuple(spec.redact.pii) if spec.redact is not None else (),
    )


def _raw_configurations(doc: Any) -> list[Any]:
    spec = doc.get("spec") if isinstance(doc, dict) else None
    confs = spec.get("eventConfigurations") if isinstance(spec, dict) else None
    return confs if isinstance(confs, list) else []


def _parse_alone(raw: Any) -> EventConfiguration | None:
    try:
        return EventConfiguration.model_validate(raw)
    except ValidationError:
        return None


def _raw_namespace(doc: Any) -> str:
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    namespace = meta.get("namespace") if isinstance(meta, dict) else None
    return namespace if isinstance(namespace, str) else "default"


def _hook_name(doc: Any) -> str | None:
    """``namespace/name`` of a hook document, or None when it has no usable name."""
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    if isinstance(meta, dict) and isinstance(meta.get("name"), str) and meta["name"]:
        return f"{_raw_namespace(doc)}/{meta['name']}"
    return None


def _target(conf: EventConfiguration, hook_ns: str, hook: str, problem: Any) -> Target | None:
    given = [
        k
        for k, v in (
            ("agentRef", conf.agent_ref),
            ("agentId", conf.agent_id),
            ("agentUrl", conf.agent_url),
            ("webhook", conf.webhook),
        )
        if v
    ]
    if not given:
        problem("agentRef", "no agent: set agentRef (or agentUrl / webhook)")
        return None
    if len(given) > 1:
        problem(given[1], f"set only one of {', '.join(given)}")
        return None
    if conf.agent_ref is not None:
        return Target(
            "agent", name=conf.agent_ref.name, namespace=conf.agent_ref.namespace or hook_ns
        )
    if conf.agent_id is not None:
        ns, sep, name = conf.agent_id.partition("/")
        if not sep or not ns or not name or "/" in name:
            problem("agentId", f"agentId {conf.agent_id!r} must be 'namespace/name'")
            return None
        logger.warning(
            "hook %s: agentId is deprecated; use agentRef: {name: %s, namespace: %s}",
            hook,
            name,
            ns,
        )
        return Target("agent", name=name, namespace=ns)
    if conf.agent_url is not None:
        return Target("a2a", url=conf.agent_url)
    assert conf.webhook is not None
    options = conf.webhook.model_dump(by_alias=True, exclude_none=True)
    if conf.webhook.body is not None:
        compiled = _compile_body(conf.webhook.body, problem)
        if compiled is None:
            return None
        options[bodytemplate.COMPILED_BODY] = compiled
    return Target("webhook", url=conf.webhook.url, options=options)


def _line_in_prompt(raw: Any, text: str, found: prompt.TemplateProblem) -> int | None:
    """The file line of a template problem inside a (multi-line) prompt, when it can be told."""
    if not found.placeholder:
        return None
    token = found.placeholder
    return line_within(raw, "prompt", token, text.count(token, 0, found.offset))


def _compile_body(body: dict[str, Any], problem: Any) -> bodytemplate.CompiledBody | None:
    """The compiled body template, or None after reporting each string that does not compile.

    Every string is compiled on its own so that each bad one is named by its path in the body.
    """
    bad = False
    for path, text in _strings(body, ("body",)):
        try:
            bodytemplate.compile_body(text)
        except prompt.TemplateError as exc:
            problem("webhook", f"{exc}; a webhook body also takes {{{{.Prompt}}}}", path)
            bad = True
    return None if bad else bodytemplate.CompiledBody(bodytemplate.compile_body(body))


def _strings(
    value: Any, path: tuple[str | int, ...]
) -> Iterable[tuple[tuple[str | int, ...], str]]:
    """Every string of a JSON value, with its path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))
