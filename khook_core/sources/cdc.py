"""The ``cdc`` source: database change events from Debezium, or PostgreSQL's wal2json output.

Accepted payloads (one Pub/Sub message each):

- Debezium change events as Debezium Server's Pub/Sub sink (or Kafka Connect) publishes them,
  with or without the JSON converter's ``{"schema", "payload"}`` wrapper; ops ``c/u/d/r/t``.
  Tombstones (empty data, or a null payload), heartbeats, transaction markers and schema-change
  events are dropped with their reason.
- wal2json ``format-version`` 1 (one document a transaction, ``change: [...]``) and 2 (one
  document a row, ``action: I/U/D/T``; ``B``/``C``/``M`` are dropped).

Every change becomes the same internal ``Change``; rules select by table, operation and column
transition (``status`` becomes ``failed`` → ``row-state-changed``). A change's identity is its
position in the log (connector + LSN / binlog position + op), so a redelivered message is a
duplicate while the next failure of the same row fires again. Snapshot reads (``op: r``) are
skipped unless ``includeSnapshots`` is set: a new connector would otherwise report every row
of the table as news.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from khook_core.event import Event
from khook_core.sources.base import Dropped, SourceContext
from khook_core.sources.fieldmap import (
    MISSING,
    FieldRule,
    content_digest,
    decode_value,
    glob_match,
    same_value,
    scalar_text,
    schema_error,
    text_of,
    time_of,
    to_event,
    validate_generic,
)
from khook_core.sources.jsonwords import json_type

ROW_STATE_CHANGED: Final = "row-state-changed"
ROW_CHANGED: Final = "row-changed"
MAX_CHANGES: Final = 1000
"""Changes accepted from one message (a wal2json v1 transaction can be large): bounded work."""
MAX_ROW_METADATA_CHARS: Final = 4096
"""A row image up to this size travels in ``metadata.before/after``."""

Op = Literal["c", "u", "d", "r", "t"]
_DEFAULT_OPS: Final[tuple[Op, ...]] = ("c", "u", "d")
OPERATIONS: Final[dict[str, str]] = {
    "c": "insert",
    "u": "update",
    "d": "delete",
    "r": "read",
    "t": "truncate",
}
_OP_ALIASES: Final = {name: op for op, name in OPERATIONS.items()} | {
    "create": "c",
    "snapshot": "r",
}
_POSITION_KEYS: Final = ("lsn", "scn", "change_lsn", "commit_lsn", "ord")
"""Log positions of the PostgreSQL, Oracle, SQL Server and MongoDB connectors (MySQL: file/pos)."""
_WAL2JSON_V1_KINDS: Final = {"insert": "c", "update": "u", "delete": "d", "truncate": "t"}
_WAL2JSON_V2_ACTIONS: Final = {"I": "c", "U": "u", "D": "d", "T": "t"}


@dataclass(frozen=True)
class Change:
    """One row change, whatever format it came in."""

    op: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    db: str
    schema: str
    table: str
    connector: str
    position: str
    time: datetime | None
    snapshot: bool
    format: str

    @property
    def qualified(self) -> str:
        return ".".join(p for p in (self.schema or self.db, self.table) if p)

    def names(self) -> tuple[str, ...]:
        """The names a ``table`` glob is matched against."""
        return tuple(
            n
            for n in {
                self.table,
                self.qualified,
                ".".join(p for p in (self.db, self.schema, self.table) if p),
            }
            if n
        )


class CdcRule(FieldRule):
    """Which changes become events: table, operations, column transition, ``when``."""

    table: str = "*"
    """Glob matched against ``table``, ``schema.table`` and ``db.schema.table``."""
    operations: list[Op] = Field(default_factory=lambda: list(_DEFAULT_OPS))
    """``c/u/d/r/t`` or ``insert/update/delete/read/truncate``."""
    column: str | None = None
    """With ``from``/``to``: the column whose transition is the event."""
    from_: list[Any] | None = Field(default=None, alias="from")
    """Old values that qualify (needs the old row: REPLICA IDENTITY FULL on PostgreSQL)."""
    to: list[Any] | None = None
    """New values that qualify; strings compare case-insensitively."""
    changed: bool = True
    """Require old != new when the old value is known (an unknown old value counts as changed)."""
    key_columns: list[str] = Field(default_factory=lambda: ["id"], alias="keyColumns")
    """Columns naming the row in ``resource.name`` (``public.jobs/42``)."""

    @field_validator("operations", mode="before")
    @classmethod
    def _aliases(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [_OP_ALIASES.get(v, v) if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _defaults(self) -> "CdcRule":
        if (self.from_ is not None or self.to is not None) and not self.column:
            raise ValueError("from/to need a column")
        if not self.event_type and "type" not in self.fields:
            self.event_type = ROW_STATE_CHANGED if self.column else ROW_CHANGED
        return self

    def transition(self, change: Change) -> tuple[Any, Any] | None:
        """(old, new) of ``column`` if this change is a qualifying transition, else None."""
        if not self.column:
            return (MISSING, MISSING)
        new: Any = None if change.after is None else change.after.get(self.column, MISSING)
        if new is MISSING:
            return None
        if change.before is not None:
            old = change.before.get(self.column, MISSING)
        else:
            old = None if change.op in ("c", "r") else MISSING
        if self.to is not None and not any(same_value(new, v) for v in self.to):
            return None
        if self.from_ is not None and (
            old is MISSING or not any(same_value(old, v) for v in self.from_)
        ):
            return None
        if self.changed and old is not MISSING and same_value(old, new):
            return None
        return old, new


class CdcConfig(BaseModel):
    """Settings of the cdc source (``plugins.yaml`` → ``config:``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    include_snapshots: bool = Field(default=False, alias="includeSnapshots")
    """Let snapshot reads (``op: r``) reach the rules (list ``r`` in a rule's operations)."""
    rules: list[CdcRule] = Field(
        default_factory=lambda: [
            CdcRule.model_validate({"column": "status", "to": ["failed", "error"]})
        ]
    )
    """Tried in order; the first matching rule builds the event. Default: any table's
    ``status`` column becoming ``failed`` or ``error``."""


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def _row(value: Any, field: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise schema_error(f"{field}: expected an object or null, got {json_type(value)}", field)
    return value


def _zip(names: Any, values: Any, field: str) -> dict[str, Any]:
    if not isinstance(names, list) or not isinstance(values, list):
        raise schema_error(f"{field}: names and values must be lists", field)
    if len(names) != len(values) or not all(isinstance(n, str) for n in names):
        raise schema_error(f"{field}: {len(names)} names for {len(values)} values", field)
    return dict(zip(names, values, strict=True))


def _columns(value: Any, field: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise schema_error(f"{field} must be a list of columns", field)
    row: dict[str, Any] = {}
    for index, column in enumerate(value):
        if not isinstance(column, dict) or not isinstance(column.get("name"), str):
            raise schema_error(
                f"{field}[{index}] must be an object with a string name", f"{field}[{index}].name"
            )
        row[column["name"]] = column.get("value")
    return row


def parse_debezium(value: dict[str, Any]) -> Change:
    """A Debezium change event (the payload, unwrapped)."""
    op = value.get("op")
    if op == "m":
        raise Dropped("logical-message")
    if not isinstance(op, str) or op not in OPERATIONS:
        raise schema_error(f"op must be one of c, u, d, r, t, got {op!r}", "op")
    source = value.get("source")
    if source is None:
        source = {}
    if not isinstance(source, dict):
        raise schema_error(f"source: expected an object, got {json_type(source)}", "source")
    position = next(
        (
            f"{k}={scalar_text(source, k, f'source.{k}')}"
            for k in _POSITION_KEYS
            if source.get(k) is not None
        ),
        "",
    )
    if not position and source.get("file") is not None:
        binlog = [scalar_text(source, k, f"source.{k}") for k in ("file", "pos", "row")]
        position = "file=" + ":".join(binlog)
    ts = source.get("ts_ms") if source.get("ts_ms") is not None else value.get("ts_ms")
    snapshot = scalar_text(source, "snapshot", "source.snapshot").lower()
    return Change(
        op=str(op),
        before=_row(value.get("before"), "before"),
        after=_row(value.get("after"), "after"),
        db=scalar_text(source, "db", "source.db"),
        schema=scalar_text(source, "schema", "source.schema"),
        table=(
            scalar_text(source, "table", "source.table")
            or scalar_text(source, "collection", "source.collection")
        ),
        connector=(
            scalar_text(source, "name", "source.name")
            or scalar_text(source, "connector", "source.connector")
        ),
        position=position or (f"ts_ms={text_of(ts)}" if ts is not None else ""),
        time=time_of(ts, "source.ts_ms"),
        snapshot=op == "r" or snapshot not in ("", "false"),
        format="debezium",
    )


def parse_wal2json_v1(value: dict[str, Any]) -> list[Change | Dropped]:
    """One wal2json format-version 1 transaction."""
    changes = value.get("change")
    if not isinstance(changes, list):
        raise schema_error("change must be a list", "change")
    if len(changes) > MAX_CHANGES:
        raise schema_error(f"change: at most {MAX_CHANGES} changes per message", "change")
    when = time_of(value.get("timestamp"), "timestamp")
    base = scalar_text(value, "nextlsn", "nextlsn") or scalar_text(value, "xid", "xid")
    out: list[Change | Dropped] = []
    for index, item in enumerate(changes):
        where = f"change[{index}]"
        if not isinstance(item, dict):
            raise schema_error(f"{where} must be an object", where)
        kind = item.get("kind")
        if kind == "message":
            out.append(Dropped("logical-message"))
            continue
        op = _WAL2JSON_V1_KINDS.get(kind) if isinstance(kind, str) else None
        if op is None:
            raise schema_error(
                f"{where}.kind must be insert, update, delete or message, got {kind!r}",
                f"{where}.kind",
            )
        after = (
            _zip(item.get("columnnames"), item.get("columnvalues"), f"{where}.columnvalues")
            if op in ("c", "u")
            else None
        )
        keys = item.get("oldkeys")
        before = None
        if isinstance(keys, dict):
            before = _zip(keys.get("keynames"), keys.get("keyvalues"), f"{where}.oldkeys")
        elif keys is not None:
            raise schema_error(f"{where}.oldkeys must be an object", f"{where}.oldkeys")
        out.append(
            Change(
                op=op,
                before=before,
                after=after,
                db="",
                schema=scalar_text(item, "schema", f"{where}.schema"),
                table=scalar_text(item, "table", f"{where}.table"),
                connector="wal2json",
                position=f"{base}#{index}" if base else "",
                time=when,
                snapshot=False,
                format="wal2json-v1",
            )
        )
    if not out:
        out.append(Dropped("empty-transaction"))
    return out


def parse_wal2json_v2(value: dict[str, Any]) -> Change:
    """One wal2json format-version 2 tuple."""
    action = value.get("action")
    if action in ("B", "C"):
        raise Dropped("transaction-boundary")
    if action == "M":
        raise Dropped("logical-message")
    op = _WAL2JSON_V2_ACTIONS.get(action) if isinstance(action, str) else None
    if op is None:
        raise schema_error(f"action must be one of I, U, D, T, B, C, M, got {action!r}", "action")
    position = scalar_text(value, "lsn", "lsn") or scalar_text(value, "xid", "xid")
    return Change(
        op=op,
        before=_columns(value.get("identity"), "identity"),
        after=_columns(value.get("columns"), "columns") if op in ("c", "u") else None,
        db="",
        schema=scalar_text(value, "schema", "schema"),
        table=scalar_text(value, "table", "table"),
        connector="wal2json",
        position=position,
        time=time_of(value.get("timestamp"), "timestamp"),
        snapshot=False,
        format="wal2json-v2",
    )


def parse(value: Any) -> list[Change | Dropped]:
    """Any accepted payload as changes (or the reason each part is dropped)."""
    if value is None or value == "":
        raise Dropped("tombstone")
    if isinstance(value, list):
        if not value:
            raise Dropped("empty-batch")
        if len(value) > MAX_CHANGES:
            raise schema_error(f"(body): at most {MAX_CHANGES} changes per message", "(body)")
        out: list[Change | Dropped] = []
        for item in value:
            try:
                out.extend(parse(item))
            except Dropped as dropped:
                out.append(dropped)
        return out
    if not isinstance(value, dict):
        raise schema_error(
            f"(body): expected an object (a change event), got {json_type(value)}", "(body)"
        )
    if "payload" in value and "schema" in value:
        return parse(value["payload"])
    if "op" in value:
        return [parse_debezium(value)]
    if "action" in value:
        return [parse_wal2json_v2(value)]
    if "change" in value:
        return list(parse_wal2json_v1(value))
    raise Dropped(_control_message(value))


def _control_message(value: dict[str, Any]) -> str:
    """Why a Debezium message that is not a change is dropped; 422 if it is nothing known."""
    if value.get("status") in ("BEGIN", "END") and "id" in value:
        return "transaction-boundary"
    if "ddl" in value or "tableChanges" in value:
        return "schema-change"
    if value and set(value) <= {"ts_ms", "ts_us", "ts_ns"}:
        return "heartbeat"
    raise schema_error(
        "not a Debezium change event or wal2json output (no op, action or change field)", "op"
    )


# --------------------------------------------------------------------------------------------
# The source
# --------------------------------------------------------------------------------------------


def _row_key(change: Change, columns: list[str]) -> str:
    row = change.after or change.before or {}
    values = [text_of(row[c]) for c in columns if row.get(c) is not None]
    return ",".join(values)


def _merge(defaults: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    out = dict(defaults)
    for key, value in given.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def _small(row: dict[str, Any] | None) -> Any:
    if row is None:
        return None
    return row if len(text_of(row)) <= MAX_ROW_METADATA_CHARS else {"truncated": True}


class CdcSource:
    """Normalises one change message into zero or more Events."""

    name: ClassVar[str] = "cdc"
    version: ClassVar[str] = "1.0.0"
    event_types: ClassVar[tuple[str, ...]] = (ROW_STATE_CHANGED, ROW_CHANGED)
    config_model: ClassVar[type[BaseModel] | None] = CdcConfig

    def __init__(self, config: BaseModel | None, context: SourceContext) -> None:
        cfg = config if isinstance(config, CdcConfig) else CdcConfig()
        self.include_snapshots = cfg.include_snapshots
        self.rules = cfg.rules
        self.context = context

    def normalize(self, raw: Any, attributes: Mapping[str, str]) -> list[Event]:
        events: list[Event] = []
        reasons: list[str] = []
        for item in parse(decode_value(raw)):
            if isinstance(item, Dropped):
                reasons.append(item.reason)
                continue
            event = self._event(item, attributes)
            if isinstance(event, str):
                reasons.append(event)
            else:
                events.append(event)
        if not events:
            raise Dropped(reasons[0] if len(set(reasons)) == 1 else "no-rule")
        return events

    def _event(self, change: Change, attributes: Mapping[str, str]) -> Event | str:
        """The event for a change, or why there is none."""
        if change.snapshot and change.op == "r" and not self.include_snapshots:
            return "snapshot"
        for rule in self.rules:
            if change.op not in rule.operations or not glob_match(rule.table, *change.names()):
                continue
            moved = rule.transition(change)
            if moved is None:
                continue
            doc = self._doc(change, rule, moved, attributes)
            if rule.matches(doc):
                return self._build(change, rule, doc)
        return "no-rule"

    @staticmethod
    def _doc(
        change: Change, rule: CdcRule, moved: tuple[Any, Any], attributes: Mapping[str, str]
    ) -> dict[str, Any]:
        old, new = moved
        doc: dict[str, Any] = {
            "op": change.op,
            "operation": OPERATIONS[change.op],
            "before": change.before,
            "after": change.after,
            "row": change.after or change.before or {},
            "db": change.db,
            "schema": change.schema,
            "table": change.table,
            "qualified": change.qualified,
            "connector": change.connector,
            "position": change.position,
            "key": _row_key(change, rule.key_columns),
            "attributes": dict(attributes),
        }
        if rule.column:
            doc |= {"column": rule.column, "old": None if old is MISSING else old, "new": new}
        return doc

    def _build(self, change: Change, rule: CdcRule, doc: dict[str, Any]) -> Event:
        key = doc["key"]
        row = f"{change.qualified}/{key}" if key else change.qualified
        operation = doc["operation"]
        if rule.column:
            old = "" if doc["old"] is None else f" from {text_of(doc['old'])!r}"
            message = f"{row}: {rule.column} changed{old} to {text_of(doc['new'])!r} ({operation})"
            reason = f"{rule.column}={text_of(doc['new'])}"[:256]
        else:
            message, reason = f"{operation} of {row}", operation
        tags = {
            "db": change.db,
            "schema": change.schema,
            "table": change.table,
            "operation": operation,
        }
        if rule.column:
            tags["column"] = rule.column
        occurrence = (
            f"{change.connector}:{change.position}:{change.op}"
            if change.position
            else f"digest:{content_digest([change.before, change.after, change.op])}"
        )
        defaults = {
            "resource": {"kind": "Row" if change.op != "t" else "Table", "name": row[:253]},
            "message": message,
            "reason": reason,
            "id": occurrence[:512],
            "timestamp": change.time,
            "groupKey": change.qualified[:1024],
            "tags": {k: v for k, v in tags.items() if v},
        }
        generic = validate_generic(_merge(defaults, rule.render(doc)))
        metadata = {
            "cdc": {
                "format": change.format,
                "connector": change.connector,
                "op": change.op,
                "position": change.position,
                "snapshot": change.snapshot,
            },
            "before": _small(change.before),
            "after": _small(change.after),
        }
        return to_event(
            generic,
            source=self.name,
            now=self.context.clock(),
            id_parts=(change.connector, change.qualified, change.position, change.op, generic.id),
            raw_ref=f"cdc:{change.connector}:{change.position}".rstrip(":"),
            metadata=metadata,
        )
