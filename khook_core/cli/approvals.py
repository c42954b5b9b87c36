"""``khook approvals`` and ``khook approve``: a person answers an agent task that paused.

``approvals`` lists what the tracker opened (``khook_core.approvals``); ``approve`` validates a
decision against the agent's request, stores it (one decision per approval, whoever else is
deciding at the same moment) and sends it to the paused task. A refused decision exits 1 and
sends nothing; a stored decision that could not be sent exits 1 too, saying why.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from khook_core import timeparse
from khook_core.approvals.records import as_json
from khook_core.cli import options
from khook_core.cli.silences import author_of
from khook_core.settings import Settings

if TYPE_CHECKING:
    from khook_core.state.base import ApprovalRecord, ApprovalStore, StateStore, TaskStore

LIST_LIMIT: Final = 500


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "approvals",
        help="list the approvals agent tasks wait for",
        description="Approvals opened by agent tasks that paused (input-required), the latest "
        "first: open ones wait for `khook approve`.",
        epilog="examples:\n  khook approvals --open\n  khook approvals --json",
    )
    p.add_argument("--open", action="store_true", help="only those still waiting")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    _common(p)
    p.set_defaults(run=cmd_list)
    p = sub.add_parser(
        "approve",
        help="decide an approval: approve (or --reject) the pending tool calls, or --answer",
        description="Approve every pending tool call of an approval (or reject them with "
        "--reject), decide call by call with --call, or answer an agent's questions with "
        "--answer. A decision that leaves a pending call unanswered is refused, nothing sent.",
        epilog="examples:\n  khook approve 3f2a9c1e0b7d\n"
        "  khook approve 3f2a9c1e0b7d --reject --reason 'the pod is healthy'\n"
        "  khook approve 3f2a9c1e0b7d --call conf-1=approve --call conf-2=reject\n"
        "  khook approve 3f2a9c1e0b7d --answer shop",
    )
    p.add_argument("approval_id", metavar="ID", help="the approval's id (see `khook approvals`)")
    p.add_argument("--reject", action="store_true", help="reject every pending tool call")
    p.add_argument("--reason", default="", help="why (sent with a rejection, recorded)")
    p.add_argument(
        "--call",
        action="append",
        default=[],
        metavar="CALL=approve|reject",
        help="decide one pending call by its id (repeat for each; all must be decided)",
    )
    p.add_argument(
        "--answer",
        action="append",
        default=[],
        metavar="TEXT",
        help="the answer to the next question (repeat, in order; comma-separated choices "
        "for a question that takes several)",
    )
    p.add_argument("--by", help="who decides (default: the user name)")
    _common(p)
    p.set_defaults(run=cmd_approve)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state", metavar="URL", help="state store (default: $KHOOK_STATE)")
    p.add_argument("--now", metavar="TIME", help=argparse.SUPPRESS)  # tests fix the clock


@dataclass
class _Version:
    version: str = ""


@dataclass
class Services:
    """The stores a decision touches, opened on the URL given (no configuration loaded)."""

    settings: Settings
    url: str
    config: _Version = field(default_factory=_Version)
    _opened: dict[str, Any] = field(default_factory=dict)

    @property
    def store(self) -> StateStore:
        from khook_core.state import open_store

        return self._open("audit", open_store)  # type: ignore[no-any-return]

    def approval_store(self) -> ApprovalStore:
        from khook_core.state import open_approval_store

        return self._open("approvals", open_approval_store)  # type: ignore[no-any-return]

    def task_store(self) -> TaskStore:
        from khook_core.state import open_task_store

        return self._open("tasks", open_task_store)  # type: ignore[no-any-return]

    def _open(self, name: str, opener: Any) -> Any:
        if name not in self._opened:
            self._opened[name] = opener(self.url, project=self.settings.firestore.project_id())
        return self._opened[name]

    def close(self) -> None:
        for store in self._opened.values():
            store.close()
        self._opened.clear()


def _now(args: argparse.Namespace) -> datetime:
    from khook_core.event import utcnow

    return options.now(args.now) or utcnow()


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from khook_core.state import open_approval_store

    url = options.state_url(args.state, settings.state, must_exist=True)
    store = open_approval_store(url, project=settings.firestore.project_id())
    try:
        found = store.approvals(open_only=args.open, limit=LIST_LIMIT)
    finally:
        store.close()
    if args.json:
        for approval in found:
            print(json.dumps(as_json(approval), sort_keys=True, ensure_ascii=False))
        return 0
    if not found:
        print("no open approvals" if args.open else "no approvals")
        return 0
    for approval in found:
        print(describe(approval))
    return 0


def cmd_approve(args: argparse.Namespace, settings: Settings) -> int:
    from khook_core.approvals.deciding import Decision, decide
    from khook_core.approvals.hitl import DecisionError

    calls: dict[str, bool] = {}
    for item in args.call:
        call, _, verdict = item.rpartition("=")
        if not call or verdict not in ("approve", "reject"):
            raise options.UsageError(f"--call {item}: expected CALL=approve or CALL=reject")
        calls[call] = verdict == "approve"
    if args.answer and (args.reject or calls):
        raise options.UsageError("--answer answers questions; it goes with no --reject/--call")
    whole = None if calls or args.answer else not args.reject
    decision = Decision(
        by=author_of(args.by),
        approve=whole,
        calls=calls,
        reason=args.reason,
        answers=tuple(args.answer),
    )
    url = options.state_url(args.state, settings.state, must_exist=True)
    services = Services(settings, url)
    try:
        done = decide(services, args.approval_id, decision, _now(args))
    except DecisionError as exc:
        print(f"khook approve: {exc}", file=sys.stderr)
        return 1
    finally:
        services.close()
    print(f"{done.id} {done.state} by {done.decided_by}; decision {done.sent}")
    return 0 if done.sent == "sent" else 1


def describe(approval: ApprovalRecord) -> str:
    """One line a person reads, then one line per pending tool call or question."""
    from khook_core.approvals import hitl

    head = (
        f"{approval.id}  {approval.state:<8} {approval.kind:<13} {approval.hook}  "
        f"task {approval.task_id}"
    )
    if approval.is_open:
        head += f"  until {timeparse.format_time(approval.deadline)}"
    else:
        head += f"  by {approval.decided_by}"
        if approval.reason:
            head += f" ({approval.reason})"
        if approval.sent:
            head += f"; {approval.sent}"
    lines = [head]
    if approval.text:
        lines.append(f"    {approval.text.splitlines()[0][:200]}")
    body = json.loads(approval.request) if approval.request else {}
    for tool in hitl.pending_tools(body):
        args = json.dumps(tool.get("args", {}), ensure_ascii=False, sort_keys=True)[:200]
        lines.append(f"    call {tool['id']}: {tool.get('name', '?')} {args}")
    for n, question in enumerate(hitl.questions(body), 1):
        choices = question.get("choices") or []
        lines.append(
            f"    question {n}: {question.get('question', '')}"
            + (f" [{', '.join(map(str, choices))}]" if choices else "")
        )
    return "\n".join(lines)
