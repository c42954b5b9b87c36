"""Turn ``khook replay`` JSON lines into a short, readable account of what would fire and why."""

from __future__ import annotations

import json
import sys

from khook_core.decisions import DecisionKind, DropReason, parse


def describe(line: dict[str, object]) -> str:
    event = line.get("event") or {}
    assert isinstance(event, dict)
    resource = event.get("resource") or {}
    assert isinstance(resource, dict)
    namespace = f"{resource.get('namespace')}/" if resource.get("namespace") else ""
    what = f"{event.get('type')} {namespace}{resource.get('name')}" if event else "(no event)"
    decision = str(line["decision"])
    try:
        kind, reason = parse(decision)
    except ValueError:  # a decision this script does not know yet: shown with its detail
        kind, reason = None, ""
    if kind is DecisionKind.DISPATCHED:
        why = f"→ {line['agent']} via hook {line['hook']}"
    elif kind is DecisionKind.DUPLICATE:
        why = f"already fired for hook {line['hook']} within its dedup window"
    elif kind is DecisionKind.NO_HOOK:
        why = "no hook watches this event type in this namespace"
    elif kind is DecisionKind.COALESCED:
        why = f"held back: its group ({line.get('detail')}) already has a run in this window"
    elif kind is DecisionKind.SUPPRESSED_BUDGET:
        why = f"held back: over budget for hook {line['hook']} or agent {line['agent']}"
    elif kind is DecisionKind.DROPPED and reason == DropReason.CONDITION_ERROR:
        why = f"hook {line['hook']}: its when: condition had no result ({line.get('detail')})"
    elif kind is DecisionKind.DROPPED:
        why = {
            "normal": "Normal event (enable with includeNormal in the mapping)",
            "stale": "last occurrence older than the freshness window",
            "unmapped-reason": "reason not in the reason table",
            "unmapped": "event type has no mapping",
            "disabled": "mapping disabled",
        }.get(reason, decision)
    else:
        why = str(line.get("detail") or "")
    return f"#{line['input']:<3} {decision:<17} {what:<48} {why}"


def main() -> int:
    """Decisions first, then the first prompt, then what ``khook replay`` said on stderr (the
    Makefile merges it into this input; it is held back so the summary comes last)."""
    prompts, said = [], []
    for raw in sys.stdin:
        if not raw.startswith("{"):
            said.append(raw.rstrip("\n"))
            continue
        line = json.loads(raw)
        print(describe(line))
        if line["decision"] == DecisionKind.DISPATCHED:
            prompts.append(line)
    if prompts:
        first = prompts[0]
        print(f"\nPrompt #{first['input']} would send to {first['agent']}:\n")
        print(first["prompt"])
    if said:
        print()
        print("\n".join(said))
    return 0


if __name__ == "__main__":
    sys.exit(main())
