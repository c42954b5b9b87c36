"""Turn ``khook replay`` JSON lines into a short, readable account of what would fire and why."""

from __future__ import annotations

import json
import sys


def describe(line: dict[str, object]) -> str:
    event = line.get("event") or {}
    assert isinstance(event, dict)
    resource = event.get("resource") or {}
    assert isinstance(resource, dict)
    namespace = f"{resource.get('namespace')}/" if resource.get("namespace") else ""
    what = f"{event.get('type')} {namespace}{resource.get('name')}" if event else "(no event)"
    decision = str(line["decision"])
    if decision == "dispatched":
        why = f"→ {line['agent']} via hook {line['hook']}"
    elif decision == "duplicate":
        why = f"already fired for hook {line['hook']} within its dedup window"
    elif decision == "no-hook":
        why = "no hook watches this event type in this namespace"
    elif decision == "coalesced":
        why = f"held back: its group ({line.get('detail')}) already has a run in this window"
    elif decision == "suppressed:budget":
        why = f"held back: over budget for hook {line['hook']} or agent {line['agent']}"
    elif decision == "dropped:condition-error":
        why = f"hook {line['hook']}: its when: condition had no result ({line.get('detail')})"
    elif decision.startswith("dropped:"):
        why = {
            "dropped:normal": "Normal event (enable with includeNormal in the mapping)",
            "dropped:stale": "last occurrence older than the freshness window",
            "dropped:unmapped-reason": "reason not in the reason table",
            "dropped:unmapped": "event type has no mapping",
            "dropped:disabled": "mapping disabled",
        }.get(decision, decision)
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
        if line["decision"] == "dispatched":
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
