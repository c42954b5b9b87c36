"""A silenced match: its decision and audit record, and what it leaves for the end-of-silence run.

Nothing is claimed: the same event after the silence ends fires as usual. Unless the silence
(or window) says ``drop``, the event joins its hook's backlog for that silence
(``keys.silence_backlog``); the sweep gives each such backlog one run once the silence has
ended, through the storm sweep's held-back summary.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from khook_core import firing
from khook_core.decisions import Decision, DecisionKind
from khook_core.errors import TransientError
from khook_core.storm import keys, records

if TYPE_CHECKING:
    from khook_core.firing import Attempt
    from khook_core.silencing.gate import Muting
    from khook_core.storm.records import Summary


def silenced(attempt: Attempt, muting: Muting) -> Decision:
    """``suppressed:silenced`` for ``attempt``'s match, recorded with the silence's id."""
    runtime, rule, event = attempt.runtime, attempt.rule, attempt.event
    store = runtime.store
    try:
        if not muting.drop:
            store.add_backlog(
                key=keys.silence_backlog(muting.id, rule.hook),
                backlog=records.backlog_of(rule.hook, event),
            )
    except TransientError as exc:  # nothing claimed: the redelivery decides again
        return firing.store_unavailable(attempt, exc)
    attempt.record(
        DecisionKind.SUPPRESSED_SILENCED,
        agent=rule.target.label(),
        extra={"silence": muting.id},
    )
    return attempt.decide(DecisionKind.SUPPRESSED_SILENCED, detail=muting.label)


def end_note(muting: str, held: Summary) -> str:
    """The prompt's note of the one run a hook gets when a silence or window has ended."""
    return (
        f"This run stands for {held.count} event(s) held back by {muting} while it was in "
        f"force ({held.first.isoformat()} to {held.last.isoformat()}); the latest of them is "
        "the event this prompt describes, and all are summarised under held_back in the "
        "event data. Events still firing now arrive (and fire) on their own."
    )
