"""The text of a decision log line: what was decided, for which hook, about which event.

Every decision line names its event (type, kind, namespace/name) so a reader of the logs, or
of the ``khook up`` console, can tell two events of one request apart without opening the
payload; when one payload holds several events they are also numbered. A message that carries
the ``khook.sample`` attribute (``khook send`` sets it to ``FILE:LINE``) says where it came from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from khook_core.event import Event
from khook_core.pipeline import Decision

SAMPLE_ATTRIBUTE: Final = "khook.sample"


def origin(attributes: Mapping[str, str]) -> str:
    """`` from FILE:LINE`` for a message ``khook send`` published, else ""."""
    sample = attributes.get(SAMPLE_ATTRIBUTE, "")
    return f" from {sample}" if sample else ""


def decision_texts(decisions: Sequence[Decision]) -> list[str]:
    """``dispatched (ns/hook) for pod-restart Pod default/web-1 (event 2 of 3)``, one each."""
    ids = list(dict.fromkeys(d.event.id for d in decisions if d.event is not None))
    texts = []
    for d in decisions:
        text = d.decision + (f" ({d.hook})" if d.hook else "")
        if d.event is not None:
            text += f" for {event_text(d.event)}"
            if len(ids) > 1:
                text += f" (event {ids.index(d.event.id) + 1} of {len(ids)})"
        texts.append(text)
    return texts


def event_text(event: Event) -> str:
    """``pod-restart Pod default/web-1``: the type, then the resource as kubectl names it."""
    r = event.resource
    name = f"{r.namespace}/{r.name}" if r.namespace else r.name
    what = " ".join(part for part in (r.kind, name) if part)
    return f"{event.type} {what}" if what else event.type
