"""W3C Trace Context without OpenTelemetry: ids, sampling and the ``traceparent`` header.

A span is started, made current and propagated before the SDK is loaded (``deferred``), so the
rules the SDK applies are applied here, the same way: a ``traceparent`` the SDK's propagator
would refuse starts a new trace, a sender's sampling decision is followed, a new trace is kept
when the low 64 bits of its id fall under the sample ratio, and ``tracestate`` travels on as
the propagator would re-serialise it (dropped whole when a member is malformed).
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Mapping
from typing import Final

TRACEPARENT: Final = "traceparent"
TRACESTATE: Final = "tracestate"
_TRACEPARENT_MAX: Final = 512
_TRACESTATE_MAX: Final = 8192
_TRACESTATE_MAX_KEYS: Final = 32
_KEY: Final = r"[a-z][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13}"
_VALUE: Final = r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]"
_HEX: Final = frozenset("0123456789abcdef")
_LOW_64: Final = (1 << 64) - 1

TraceState = tuple[tuple[str, str], ...]


class SpanContext:
    """What a span passes to its children and to the next process (never changed once made).

    A plain class: a dataclass or ``NamedTuple`` would cost the cold start their generated
    code and evaluated annotations.
    """

    __slots__ = ("flags", "remote", "sampled", "span_id", "trace_id", "trace_state")

    def __init__(
        self,
        trace_id: int,
        span_id: int,
        sampled: bool,
        remote: bool = False,
        trace_state: TraceState = (),
        flags: int = 0,
    ) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.sampled = sampled
        self.remote = remote
        self.trace_state = trace_state
        self.flags = flags
        """The header's trace flags as received (a remote parent); a local span's are
        ``sampled``."""

    def headers(self) -> dict[str, str]:
        """``traceparent`` (and ``tracestate``) naming this span as the parent."""
        carrier = {TRACEPARENT: f"00-{self.trace_id:032x}-{self.span_id:016x}-{self.flags:02x}"}
        if self.trace_state:
            carrier[TRACESTATE] = ",".join(f"{k}={v}" for k, v in self.trace_state)
        return carrier


def new_trace_id() -> int:
    while not (trace_id := random.getrandbits(128)):
        pass
    return trace_id


def new_span_id() -> int:
    while not (span_id := random.getrandbits(64)):
        pass
    return span_id


def ratio_keeps(trace_id: int, ratio: float) -> bool:
    """A new trace is sampled when its id's low 64 bits fall under ``ratio`` of their range."""
    return trace_id & _LOW_64 < round(ratio * (_LOW_64 + 1))


def extract(carrier: Mapping[str, str]) -> SpanContext | None:
    """The sender's span in ``carrier``; None when absent or not a valid ``traceparent``."""
    header = carrier.get(TRACEPARENT)
    if not header or len(header) > _TRACEPARENT_MAX:
        return None
    parsed = _traceparent(header)
    if parsed is None:
        return None
    version, trace_hex, span_hex, flags_hex, rest = parsed
    trace_id, span_id = int(trace_hex, 16), int(span_hex, 16)
    if not trace_id or not span_id or version == "ff" or (version == "00" and rest):
        return None
    flags = int(flags_hex, 16)
    return SpanContext(
        trace_id,
        span_id,
        sampled=bool(flags & 1),
        remote=True,
        trace_state=_trace_state(carrier.get(TRACESTATE)),
        flags=flags,
    )


def _traceparent(header: str) -> tuple[str, str, str, str, str] | None:
    """``version-trace-span-flags`` (lower-case hex) and what follows a ``-`` after them, or
    None; leading blanks and trailing blanks (without a suffix) allowed. Read by hand: the
    regular expression would cost a cold start a millisecond to compile."""
    text = header.lstrip(" \t")
    head, rest = text[:55], text[55:].removesuffix("\n")  # as a regular expression's ``$``
    if len(head) < 55 or head[2] != "-" or head[35] != "-" or head[52] != "-" or "\n" in rest:
        return None
    fields = head[:2], head[3:35], head[36:52], head[53:55]
    if not all(_HEX.issuperset(field) for field in fields):
        return None
    if rest.startswith("-"):
        return (*fields, rest)
    if rest.strip(" \t"):
        return None
    return (*fields, "")


@functools.cache
def _member_re() -> re.Pattern[str]:
    return re.compile(f"({_KEY})=({_VALUE})")


def _trace_state(header: str | None) -> TraceState:
    if header is None or len(header) > _TRACESTATE_MAX:
        return ()
    pairs: dict[str, str] = {}
    for raw in header.split(","):
        member = raw.strip(" \t")
        if not member:
            continue
        match = _member_re().fullmatch(member)
        if match is None or match.group(1) in pairs:
            return ()
        pairs[match.group(1)] = match.group(2)
    if len(pairs) > _TRACESTATE_MAX_KEYS:
        return ()
    return tuple(pairs.items())
