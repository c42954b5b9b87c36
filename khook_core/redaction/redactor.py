"""The redaction step: one event in, the same event with its secrets masked out.

The pipeline calls ``Redactor.events`` once, right after the source normalised the payload, so
everything downstream (prompt data block, inlined placeholders, A2A metadata, webhook bodies,
follow-ups, audit records, held-back backlogs, log lines, the local console) only ever sees the
masked event.

Order, per source: the ``redact:`` rules of plugins.yaml (drop, then mask, by field path), the
name-based defaults (a key that says secret, a CDC column that says password/ssn/card…), then
the credential detectors over every remaining text, then the source's opt-in personal data.

The common case is cheap: each text of the event, and the ``repr`` of its tags and metadata, is
searched for the detectors' anchors (``detectors.anchored``), and only a text with one is
scanned; texts and flat maps found clean are remembered, so the repeats of a storm cost a
lookup. An event with nothing to mask (and no rules) is returned as it is, the same object.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from pydantic import SecretStr

from khook_core.escaping import TRUNCATION_MARK
from khook_core.event import Event
from khook_core.redaction.detectors import (
    MASK_PREFIX,
    PAIR_KIND,
    PLAIN,
    SECRET_KEY,
    anchored,
    format_of,
    lowered,
    scan,
)
from khook_core.redaction.keyed import Masker, key_bytes
from khook_core.redaction.pii import pii_kind, pii_pattern
from khook_core.redaction.rules import (
    SENSITIVE_COLUMN,
    PathSet,
    PiiKind,
    RedactRules,
    TableRules,
)

logger = logging.getLogger(__name__)

MAX_MASKED_CHARS: Final = 256
"""Masks can make a short value longer: a value grows to at most this many characters (or its
own length, when longer); the rest is cut, never inside a mask, and ends with ``…``."""
_CUT_MASK: Final = re.compile(r"\[redacted:[a-z0-9-]*(?::[0-9a-f]{0,8})?")
"""The head of a mask that a cut ended in."""
MAX_PASSES: Final = 4
"""Passes of ``Redactor.text`` at most; one is the rule, two is rare."""
MASK: Final = re.compile(r"\[redacted:[a-z0-9-]{1,40}:[0-9a-f]{8}\]")
"""A mask as this module writes it."""
WEAK_SECRET_KEY: Final = re.compile(r"(?i)(?:key|signature|sig|cookie|session(?:id)?|salt)\Z")
"""Names that say secret only when the value looks random (see ``_random``)."""
_WEAK_PAIR: Final = re.compile(
    r"(?:key|signature|sig|cookie|session(?:id)?|salt)': '[a-z0-9+/=_-]{20,}'"
)
"""The prefilter's view of a weak-named key with a random-looking value, in the lower-cased
``repr`` of the tags and metadata."""
CLEAN_CACHE: Final = 4096
"""Texts and maps remembered as clean; the memory is cleared when full."""
CLEAN_CACHE_CHARS: Final = 2048
"""Only texts (and flat maps whose ``repr``) this short are remembered: a storm repeats short
messages."""
CLEAN_CACHE_MAP_CHARS: Final = 16384
"""A nested map (an alert's annotations, a webhook body) is remembered by its ``repr`` up to
this size: an alert storm repeats the same labels and annotations."""
CLEAN_CACHE_TOTAL: Final = 4_000_000
"""Characters of remembered ``repr``s at most, so the memory stays bounded (a few MiB)."""
_plain: Final = PLAIN.match
"""``detectors.plain`` without the call: a short name or reason needs no anchor search."""
_TOKEN: Final = re.compile(r"[A-Za-z0-9+/=_-]{20,}")
MIN_ENTROPY: Final = 4.2
"""Bits a character a random-looking value has at least: above hexadecimal (a digest, a commit
SHA, a UID has at most 4.0), below random base64 (about 5 at 40 characters)."""
CDC_ROWS: Final = ("before", "after")
_TEXT_FIELDS: Final = ("message", "reason", "group_key", "occurrence")
_DROP: Final = object()


@dataclass(frozen=True, slots=True)
class Finding:
    """One masked or dropped value: its kind and field path (never the value)."""

    kind: str
    path: str


@dataclass
class _Scope:
    """One event's rules and what was found in it."""

    mask: PathSet
    drop: PathSet
    allow: PathSet
    pii: tuple[re.Pattern[str], ...] = ()
    table: TableRules | None = None
    cdc: bool = False
    found: list[Finding] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class MaskCount:
    """Values of one kind masked in one source's events (``Redactor.masked``)."""

    source: str
    kind: str
    count: int


MaskListener = Callable[[str, str, int], None]
"""Called with (source, kind, how many) each time an event has values of that kind masked:
what a metrics counter adds (``Redactor.on_masked``)."""


class Redactor:
    """Masks the credentials of events, and the fields each source's rules name.

    ``counts`` adds up the masked values per (source, kind) over the life of the process;
    ``masked()`` lists them, and ``on_masked`` is told of every addition, so metrics read the
    same numbers the log lines say.
    """

    def __init__(self, key: bytes, rules: Mapping[str, RedactRules] | None = None) -> None:
        self.masker = Masker(key)
        self.rules = dict(rules or {})
        self.counts: Counter[tuple[str, str]] = Counter()
        self._clean: dict[Any, None] = {}  # texts and maps known to hold no secret
        self._clean_chars = 0
        self._columns: dict[tuple[str, ...], bool] = {}  # CDC column names: any sensitive?
        self._nested: set[str] = set()  # sources whose metadata had nested values
        self.findings: dict[str, list[Finding]] | None = None
        """Set to a dict to keep what was masked in each event, by event id (``khook replay
        --explain``)."""
        self.on_masked: MaskListener | None = None
        """Told (source, kind, count) of each event's masked values: the telemetry counter. One
        that raises is logged and never costs an event its redaction."""

    # -- events -----------------------------------------------------------------------------

    def events(self, events: Iterable[Event]) -> list[Event]:
        """Each event redacted; a masked value is logged as a count per kind and a path."""
        out = []
        for event in events:
            # The common case inline: no rules, no secret (a storm's events are looked up).
            if event.source in self.rules or event.source == "cdc" or self._suspect(event):
                event = self.event(event)
            out.append(event)
        return out

    def masked(self) -> list[MaskCount]:
        """Every (source, kind) masked since the process started, with its count, sorted."""
        return [MaskCount(source, kind, n) for (source, kind), n in sorted(self.counts.items())]

    def event(self, event: Event) -> Event:
        redacted, found = self.explain(event)
        if self.findings is not None:
            self.findings[event.id] = found
        self._count(event, found, "")
        return redacted

    def pii(self, event: Event, kinds: Iterable[PiiKind], hook: str = "") -> Event:
        """``event`` (redacted already) with the personal data of ``kinds`` masked too: a
        hook's ``spec.redact.pii``, applied to what that hook's runs see. Counted and logged
        as the step's findings are; the same value masks alike in both."""
        scope = _Scope(PathSet([]), PathSet([]), PathSet([]), tuple(pii_pattern(k) for k in kinds))
        redacted = self._apply(event, scope)
        if self.findings is not None and scope.found:
            self.findings.setdefault(event.id, []).extend(scope.found)
        self._count(event, scope.found, hook)
        return redacted

    def _count(self, event: Event, found: list[Finding], hook: str) -> None:
        if not found:
            return
        kinds = Counter(f.kind for f in found)
        for kind, n in kinds.items():
            self.counts[(event.source, kind)] += n
            if self.on_masked is not None:
                try:
                    self.on_masked(event.source, kind, n)
                except Exception:  # metrics must not cost an event its redaction
                    logger.exception("the redaction count listener failed")
        logger.info(
            "redacted %d value(s) of %s event %s%s: %s",
            len(found),
            event.source,
            event.id,
            f" for hook {hook}" if hook else "",
            ", ".join(f"{f.kind} at {f.path}" for f in found),
            extra={"redacted": dict(kinds), "redacted_source": event.source},
        )

    def explain(self, event: Event) -> tuple[Event, list[Finding]]:
        """The redacted event and what was masked (kind and field path)."""
        rules = self.rules.get(event.source)
        cdc = event.source == "cdc"
        if (
            rules is None
            and not (cdc and self._sensitive_columns(event))
            and not self._suspect(event)
        ):
            return event, []
        scope = self._scope(event, rules, cdc)
        return self._apply(event, scope), scope.found

    def _apply(self, event: Event, scope: _Scope) -> Event:
        """``event`` with ``scope``'s rules, the name defaults and the detectors applied; what
        was masked is added to ``scope.found``."""
        changes: dict[str, Any] = {}
        for name in _TEXT_FIELDS:
            old = getattr(event, name)
            new = self._field(old, (name,), scope)
            if new is _DROP:
                new = ""
            if new != old:
                changes[name] = new
        for name in ("tags", "metadata"):
            old = getattr(event, name)
            new = self._field(old, (name,), scope)
            if new is _DROP:
                new = {}
            if new != old:
                changes[name] = new
        resource = event.resource
        name_of = self._field(resource.name, ("resource", "name"), scope)
        if isinstance(name_of, str) and name_of != resource.name:
            changes["resource"] = resource.model_copy(update={"name": name_of})
        return event.evolve(**changes) if changes else event

    def _suspect(self, event: Event) -> bool:
        """Could any detector match anywhere in the event? Texts and flat maps already seen
        clean (a storm repeats them) are looked up instead of scanned again."""
        clean = self._clean
        for text in (
            event.message,
            event.reason,
            event.resource.name,
            event.group_key,
            event.occurrence,
        ):
            if text and text not in clean:
                if not _plain(text) and anchored(text) and scan(text):
                    return True
                if len(text) <= CLEAN_CACHE_CHARS:
                    self._remember(text)
        nested = self._nested
        for mapping, flat in ((event.tags, True), (event.metadata, event.source not in nested)):
            if not mapping:
                continue
            key: Any = None
            if flat:
                try:
                    key = (tuple(mapping), tuple(mapping.values()))
                    if key in clean:
                        continue
                except TypeError:  # nested values (annotations, a body): known by their repr
                    nested.add(event.source)  # and the source's next ones too, without a try
                    key = None
            blob = repr(mapping)
            if key is None:
                if blob in clean:
                    continue
                key = blob
            if (anchored(blob) and scan(blob)) or _WEAK_PAIR.search(lowered(blob)):
                return True
            if len(blob) <= CLEAN_CACHE_MAP_CHARS:
                self._remember(key, len(blob))
        return False

    def _sensitive_columns(self, event: Event) -> bool:
        """Does a row image of a CDC event have a column the defaults mask? A table's columns
        repeat from change to change: each set of names is looked at once."""
        for image in CDC_ROWS:
            row = event.metadata.get(image)
            if isinstance(row, dict) and row:
                columns = tuple(map(str, row))
                known = self._columns.get(columns)
                if known is None:
                    if len(self._columns) >= CLEAN_CACHE:
                        self._columns.clear()
                    known = self._columns[columns] = _sensitive(columns)
                if known:
                    return True
        return False

    def _remember(self, clean: Any, size: int = 0) -> None:
        """Remember ``clean`` (a text, a flat map's key or a nested map's ``repr``, ``size``
        characters); the memory is cleared when it holds ``CLEAN_CACHE`` of them or
        ``CLEAN_CACHE_TOTAL`` characters."""
        if len(self._clean) >= CLEAN_CACHE or self._clean_chars + size > CLEAN_CACHE_TOTAL:
            self._clean.clear()
            self._clean_chars = 0
        self._clean[clean] = None
        self._clean_chars += size

    def _scope(self, event: Event, rules: RedactRules | None, cdc: bool) -> _Scope:
        if rules is None:
            return _Scope(PathSet([]), PathSet([]), PathSet([]), cdc=cdc)
        table = None
        if cdc and rules.tables:
            schema, name = event.tags.get("schema", ""), event.tags.get("table", "")
            table = rules.tables.get(f"{schema}.{name}") or rules.tables.get(name)
        return _Scope(
            PathSet(rules.mask),
            PathSet(rules.drop),
            PathSet(rules.allow),
            tuple(pii_pattern(kind) for kind in rules.pii),
            table,
            cdc,
        )

    # -- values -----------------------------------------------------------------------------

    def _field(self, value: Any, path: tuple[str, ...], scope: _Scope) -> Any:
        if scope.drop and scope.drop.matches(path):
            scope.found.append(Finding("dropped", ".".join(path)))
            return _DROP
        if scope.mask and scope.mask.matches(path) and value not in ("", None, {}, []):
            return self._masked("field", value, path, scope)
        if isinstance(value, str):
            return self._text(value, path, scope)
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                sub = (*path, str(key))
                kind = self._named(str(key), item, sub, scope)
                new = (
                    self._masked(kind, item, sub, scope) if kind else self._field(item, sub, scope)
                )
                if new is not _DROP:
                    out[key] = new
            return out
        if isinstance(value, list):
            items = [self._field(item, (*path, str(i)), scope) for i, item in enumerate(value)]
            return [item for item in items if item is not _DROP]
        return value

    def _named(self, key: str, value: Any, path: tuple[str, ...], scope: _Scope) -> str:
        """The kind to mask ``value`` as because of its name, or "" (the detectors decide)."""
        if value in ("", None) or isinstance(value, (bool, dict, list)):
            return ""
        if scope.allow and scope.allow.matches(path):
            return ""
        if isinstance(value, str) and value.startswith(MASK_PREFIX):
            return ""
        if scope.cdc and len(path) == 3 and path[0] == "metadata" and path[1] in CDC_ROWS:
            table = scope.table
            if table is not None and (
                (table.allow is not None and key not in table.allow) or key in table.deny
            ):
                return "column"
            if (table is None or table.allow is None or key not in table.allow) and (
                SENSITIVE_COLUMN.search(key)
            ):
                return "column"
        if SECRET_KEY.search(key):
            return "secret-field"
        if isinstance(value, str) and WEAK_SECRET_KEY.search(key) and _random(value):
            return "secret-field"
        return ""

    def _masked(self, kind: str, value: Any, path: tuple[str, ...], scope: _Scope) -> str:
        scope.found.append(Finding(kind, ".".join(path)))
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        return self.masker.mask(kind, text)

    def _text(self, text: str, path: tuple[str, ...], scope: _Scope) -> str:
        found: list[str] = []
        out = self.text(text, scope.pii, found)
        scope.found.extend(Finding(kind, ".".join(path)) for kind in found)
        return out

    def text(
        self, text: str, pii: tuple[re.Pattern[str], ...] = (), found: list[str] | None = None
    ) -> str:
        """``text`` with every credential the detectors know (and the ``pii`` patterns') masked;
        the kinds masked are appended to ``found``.

        Repeated until nothing changes: a mask can end a run of characters that hid a token
        (``AIza…`` glued to a PEM header), so the result is a fixed point and masking it again
        changes nothing."""
        out = text
        for _ in range(MAX_PASSES):
            kinds: list[str] = []
            new = _capped(self._pass(out, pii, kinds), len(text))
            if new == out:  # what this pass found, if anything, the cap cut off
                break
            out = new
            if found is not None:
                found.extend(kinds)
        return out

    def _pass(self, text: str, pii: tuple[re.Pattern[str], ...], found: list[str]) -> str:
        pieces: list[str] = []
        pos = 0
        for hit in scan(text):
            secret = text[hit.start : hit.end]
            kind = format_of(secret) if hit.kind == PAIR_KIND else hit.kind
            pieces.append(text[pos : hit.start])
            pieces.append(self.masker.mask(kind, secret))
            pos = hit.end
            found.append(kind)
        out = text if not pieces else "".join(pieces) + text[pos:]
        for pattern in pii:
            out = self._pii(out, pattern, found)
        return out

    def _pii(self, text: str, pattern: re.Pattern[str], found: list[str] | None) -> str:
        """``pattern``'s matches masked outside the masks already there."""
        kind = pii_kind(pattern)
        pieces: list[str] = []
        pos = 0
        for mask in [*MASK.finditer(text), None]:
            end = len(text) if mask is None else mask.start()
            segment = text[pos:end]

            def replace(m: re.Match[str]) -> str:
                if found is not None:
                    found.append(kind)
                return self.masker.mask(kind, m.group())

            pieces.append(pattern.sub(replace, segment))
            if mask is not None:
                pieces.append(mask.group())
                pos = mask.end()
        return "".join(pieces)


def _sensitive(columns: tuple[str, ...]) -> bool:
    return any(SENSITIVE_COLUMN.search(c) or SECRET_KEY.search(c) for c in columns)


def _capped(text: str, original: int) -> str:
    """``text`` cut to ``max(original, MAX_MASKED_CHARS)``, never inside a mask."""
    cap = max(original, MAX_MASKED_CHARS)
    if len(text) <= cap:
        return text
    head = text[: cap - len(TRUNCATION_MARK)]
    opened = head.rfind("[")
    tail = head[opened:]
    if opened >= 0 and (MASK_PREFIX.startswith(tail) or _CUT_MASK.fullmatch(tail)):
        head = head[:opened]  # a mask cut in two would read as text
    return head + TRUNCATION_MARK


def _random(value: str) -> bool:
    """A single token of 20+ characters with more entropy than hexadecimal can have."""
    if not _TOKEN.fullmatch(value):
        return False
    counts = Counter(value)
    n = len(value)
    entropy = -sum(c / n * math.log2(c / n) for c in counts.values())
    return entropy > MIN_ENTROPY


def build_redactor(
    key: SecretStr | None, rules: Mapping[str, RedactRules], *, deployed: bool = False
) -> Redactor:
    """The process's redactor: ``key`` is ``KHOOK_REDACTION_KEY`` (unset: a random key of this
    process, so masks are never guessable, but match only within it; ``deployed``, on Cloud
    Run, where instances come and go, that is worth a warning)."""
    if key is None:
        if deployed:
            _warn_unkeyed()
        return Redactor(_PROCESS_KEY, rules)
    return Redactor(key_bytes(key.get_secret_value()), rules)


_PROCESS_KEY: Final = secrets.token_bytes(32)
"""The key of a process without ``KHOOK_REDACTION_KEY``: random, never written anywhere."""


@functools.cache
def _warn_unkeyed() -> None:
    logger.warning(
        "KHOOK_REDACTION_KEY is not set: masks use a random key of this process, so the same "
        "secret masks differently on other instances"
    )
