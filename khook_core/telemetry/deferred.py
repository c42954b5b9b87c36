"""Telemetry on, with the OpenTelemetry SDK loaded off the request path.

Importing the SDK costs a cold start ~40 ms (the metrics SDK most of it), four times the
budget. So this class needs none of it to serve an event: spans are started, made current,
timed and propagated here (``tracecontext``: the SDK's ids, sampling and ``traceparent``
rules), finished spans kept as plain records, and metric measurements kept in a plain
list. ``load`` imports ``otel`` (the SDK and the exporters) and hands it all that was
recorded: the spans as the SDK's ``ReadableSpan``, each measurement replayed into the SDK's
instruments in order with the span it was made in (the SDK's exemplars link a measurement to
its trace), so an export holds what the SDK alone would have recorded; from then on every
record goes straight to the SDK.

``load`` runs on a background thread ``LOAD_DELAY`` seconds after the first answer (the first
root span to end, or a metric recorded outside a span), at ``close``, and at interpreter exit,
so nothing recorded is lost; a process that recorded nothing never loads the SDK.
"""

from __future__ import annotations

import _thread
import atexit
import contextvars
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Final, Protocol

from khook_core.telemetry import SpanKind, Telemetry
from khook_core.telemetry import tracecontext as tc

if TYPE_CHECKING:
    from collections.abc import Iterable

    from khook_core.settings import TelemetrySettings

logger = logging.getLogger(__name__)

LOAD_DELAY: Final = 0.5
"""Seconds from the first answer to loading the SDK: the response is on its way first."""

_CURRENT: contextvars.ContextVar[tc.SpanContext | None] = contextvars.ContextVar(
    "khook_current_span", default=None
)
"""The current span of this thread or task, shared by every ``DeferredTelemetry`` as
OpenTelemetry's context would be."""


class SpanRecord:
    """A finished, sampled span, not yet handed to the SDK (a plain class, as
    ``tracecontext.SpanContext`` is)."""

    __slots__ = ("attributes", "context", "end_ns", "kind", "name", "parent", "start_ns")

    def __init__(
        self,
        name: str,
        context: tc.SpanContext,
        parent: tc.SpanContext | None,
        kind: SpanKind,
        start_ns: int,
        end_ns: int,
        attributes: Mapping[str, str] | None,
    ) -> None:
        self.name = name
        self.context = context
        self.parent = parent
        self.kind = kind
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.attributes = attributes


class Measurement:
    """One metric measurement, made inside ``span`` (None: outside any)."""

    __slots__ = ("attributes", "counter", "name", "span", "value")

    def __init__(
        self,
        counter: bool,
        name: str,
        value: float,
        attributes: Mapping[str, str],
        span: tc.SpanContext | None,
    ) -> None:
        self.counter = counter
        """A counter's addition, else a histogram's value."""
        self.name = name
        self.value = value
        self.attributes = attributes
        self.span = span


class Sink(Protocol):
    """What ``otel.Exporting`` offers: where records go once the SDK is loaded."""

    def spans(self, records: Iterable[SpanRecord]) -> None: ...
    def measure(self, measurements: Iterable[Measurement]) -> None: ...
    def close(self) -> None: ...


class _Discard:
    """The sink of a process whose exporters could not be built: the failure is logged once."""

    def spans(self, records: Iterable[SpanRecord]) -> None:
        return None

    def measure(self, measurements: Iterable[Measurement]) -> None:
        return None

    def close(self) -> None:
        return None


class _Span:
    """One span's ``with`` block: current inside it, recorded (if sampled) when it ends."""

    __slots__ = (
        "_kind",
        "_name",
        "_owner",
        "_parent",
        "_start_ns",
        "_token",
        "attributes",
        "context",
    )

    def __init__(
        self,
        owner: DeferredTelemetry,
        name: str,
        parent: tc.SpanContext | None,
        kind: SpanKind,
        start_ns: int | None,
        attributes: Mapping[str, str] | None,
    ) -> None:
        self._owner, self._name, self._parent, self._kind = owner, name, parent, kind
        self._start_ns = start_ns
        self.attributes = attributes
        self.context = owner.child_of(parent)

    def __enter__(self) -> None:
        if self._start_ns is None:
            self._start_ns = time.time_ns()
        self._token = _CURRENT.set(self.context)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # An exception is the pipeline's control flow (``Dropped``) or becomes a decision:
        # the decisions say how an event ended, a status on the span would not.
        end_ns = time.time_ns()
        _CURRENT.reset(self._token)
        assert self._start_ns is not None
        self._owner.finished(
            SpanRecord(
                self._name,
                self.context,
                self._parent,
                self._kind,
                self._start_ns,
                end_ns,
                self.attributes,
            ),
            root=self._parent is None or self._parent.remote,
        )


class DeferredTelemetry(Telemetry):
    """Spans and metrics from the first event; the SDK loaded after the first answer."""

    enabled = True

    def __init__(
        self,
        settings: TelemetrySettings,
        *,
        function: str,
        sink: Callable[[str], Sink],
        load_delay: float = LOAD_DELAY,
    ) -> None:
        """
        Args:
            sink: builds the SDK side (``otel.Exporting``) for a ``service.instance.id``;
                called once, by ``load``.
            load_delay: seconds from the first answer to ``load`` on a background thread.
        """
        self.function = function
        self.instance = uuid.uuid4().hex
        self._ratio = settings.sample_ratio
        self._build_sink = sink
        self._delay = load_delay
        self._lock = threading.Lock()
        """Guards the records below and the switch to the sink."""
        self._loading = threading.Lock()
        """One ``load`` at a time (the import runs outside ``_lock``)."""
        self._sink: Sink | None = None
        self._spans: list[SpanRecord] = []
        self._measurements: list[Measurement] = []
        self._scheduled = False
        self._closing = threading.Event()
        self._loaded = threading.Event()
        self._closed = False
        atexit.register(self.close)

    @property
    def loaded(self) -> bool:
        """Whether the SDK took over (what was recorded before has been handed to it)."""
        return self._sink is not None

    # -- traces -------------------------------------------------------------------------------

    def child_of(self, parent: tc.SpanContext | None) -> tc.SpanContext:
        """A new span's context: a child of ``parent``, or the root of a new trace."""
        if parent is None:
            trace_id = tc.new_trace_id()
            sampled = tc.ratio_keeps(trace_id, self._ratio)
            return tc.SpanContext(trace_id, tc.new_span_id(), sampled, flags=int(sampled))
        return tc.SpanContext(
            parent.trace_id,
            tc.new_span_id(),
            parent.sampled,
            trace_state=parent.trace_state,
            flags=int(parent.sampled),
        )

    def span(
        self,
        name: str,
        *,
        parent: Mapping[str, str] | None = None,
        kind: SpanKind = "internal",
        start_ns: int | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> _Span:
        # A carrier without a valid ``traceparent`` starts a new trace, as the SDK's
        # propagator would; no carrier: the current span's child.
        context = tc.extract(parent) if parent is not None else _CURRENT.get()
        return _Span(self, name, context, kind, start_ns, attributes)

    def record_span(self, name: str, start_ns: int, end_ns: int) -> None:
        parent = _CURRENT.get()
        context = self.child_of(parent)
        self.finished(
            SpanRecord(name, context, parent, "internal", start_ns, end_ns, None),
            root=parent is None,
        )

    def trace_headers(self) -> dict[str, str]:
        current = _CURRENT.get()
        return current.headers() if current is not None else {}

    def finished(self, record: SpanRecord, *, root: bool) -> None:
        """A span ended: kept until the SDK is loaded, exported after (when sampled)."""
        sink = self._sink
        if sink is None:
            with self._lock:
                sink = self._sink
                if sink is None:
                    if record.context.sampled:
                        self._spans.append(record)
                    if root:
                        self._schedule()
                    return
        if record.context.sampled:
            sink.spans((record,))

    # -- metrics ------------------------------------------------------------------------------

    def _measure(self, counter: bool, name: str, value: float, attributes: dict[str, str]) -> None:
        measurement = Measurement(counter, name, value, attributes, _CURRENT.get())
        sink = self._sink
        if sink is None:
            with self._lock:
                sink = self._sink
                if sink is None:
                    self._measurements.append(measurement)
                    if measurement.span is None:
                        self._schedule()
                    return
        sink.measure((measurement,))

    def _add(self, name: str, value: float, attributes: dict[str, str]) -> None:
        self._measure(True, name, value, attributes)

    def _record(self, name: str, value: float, attributes: dict[str, str]) -> None:
        self._measure(False, name, value, attributes)

    def event_in(self, source: str) -> None:
        self._add("khook.events.in", 1, {"source": source, "function": self.function})

    def decision(self, source: str, decision: str) -> None:
        self._add(
            "khook.decisions",
            1,
            {"source": source, "function": self.function, "decision": decision},
        )

    def claim(self, source: str, seconds: float, result: str) -> None:
        self._record(
            "khook.claim.duration",
            seconds,
            {"source": source, "function": self.function, "result": result},
        )

    def dispatch(self, source: str, seconds: float, outcome: str) -> None:
        attributes = {"source": source, "function": self.function, "outcome": outcome}
        self._record("khook.dispatch.duration", seconds, attributes)
        self._add("khook.dispatches", 1, attributes)

    def backlog(self, source: str, size: int) -> None:
        self._record("khook.backlog.size", size, {"source": source, "function": self.function})

    def reload(self, outcome: str) -> None:
        self._add("khook.config.reloads", 1, {"function": self.function, "outcome": outcome})

    def masked(self, source: str, kind: str, count: int) -> None:
        self._add(
            "khook.redaction.masked",
            count,
            {"source": source, "function": self.function, "kind": kind},
        )

    # -- loading ------------------------------------------------------------------------------

    def _schedule(self) -> None:
        """Load the SDK soon, off this thread (called holding ``_lock``).

        A bare thread, not ``threading.Thread``: its ``start`` waits until the new thread
        runs, which on a busy machine is milliseconds of the answer that scheduled it. Exit
        does not wait for it either: ``close`` runs at exit instead.
        """
        if not self._scheduled and not self._closed:
            self._scheduled = True
            _thread.start_new_thread(self._load_later, ())

    def _load_later(self) -> None:
        if not self._closing.wait(self._delay):
            self.load()

    def wait_loaded(self, timeout: float) -> bool:
        """Whether the SDK took over within ``timeout`` seconds (tests, diagnostics)."""
        return self._loaded.wait(timeout)

    def load(self) -> None:
        """Import the SDK and hand it everything recorded so far (once; later calls return)."""
        with self._loading:
            if self._sink is not None:
                return
            try:
                sink = self._build_sink(self.instance)
            except Exception:
                logger.exception(
                    "telemetry: the exporters cannot start; spans and metrics "
                    "of this process are dropped"
                )
                sink = _Discard()
            with self._lock:
                spans, measurements = self._spans, self._measurements
                self._spans, self._measurements = [], []
                # Replayed holding the lock: a record made meanwhile waits and comes after.
                sink.measure(measurements)
                sink.spans(spans)
                self._sink = sink
            self._loaded.set()

    def close(self) -> None:
        if self._closed:
            return
        with self._lock:
            self._closed = True
            scheduled = self._scheduled
            pending = bool(self._spans or self._measurements)
        self._closing.set()
        if self._sink is None and (pending or scheduled):
            self.load()
        if self._sink is not None:
            self._sink.close()
        atexit.unregister(self.close)
