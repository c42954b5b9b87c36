"""A demo A2A agent that shows the prompts it receives: the far end of ``khook up``.

It answers what khook sends to kagent, on kagent's paths (``/api/a2a/{namespace}/{name}/``),
in both wires: A2A 0.3 ``message/send`` and 1.0 ``SendMessage`` (with
``A2A-Version: 1.0``), and serves an agent card offering both. Every prompt is printed to the
console and appended to a JSON-lines file; the answer is a task in state ``submitted``, which
is what a non-blocking send to kagent returns. A repeated ``messageId`` gets the same task
back, as an idempotent agent would, so redeliveries are visible without starting a second run.
Asked about a task (``tasks/get`` / ``GetTask``), it says ``working`` until ``complete_after``
seconds have passed since the send, then ``completed`` with a short finding as its artifact,
so the sweep's task tracking brings a finding back in the local stack. A task for an
``oom-kill`` event sent with kagent's human-in-the-loop extension asked for (``A2A-Extensions``)
first pauses ``input-required`` for one tool approval (``restart_pod``), as kagent does, and
investigates once the decision arrives on the task (``khook approve``).

The stdlib only: the a2a-sdk is a test dependency, and this ships with the runtime.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Final, TextIO
from urllib.parse import unquote, urlsplit

from khook_local.loopback import LoopbackServer, OwnedServer

AGENT_PATH: Final = re.compile(r"^/api/a2a/([^/]+)/([^/]+)/?(\.well-known/[a-z\-]+\.json)?$")
CARD_FILES: Final = (".well-known/agent-card.json", ".well-known/agent.json")
MAX_BODY_BYTES: Final = 1024 * 1024
CONSOLE_LINE_CHARS: Final = 200
MAX_REMEMBERED: Final = 10_000
COMPLETE_AFTER_S: Final = 3.0
"""How long a demo task "investigates" before it completes (a tick or two of ``khook up``)."""
"""Prompts kept in memory (``received``); the prompts file keeps them all."""
"""How often the HTTP server checks for shutdown (the stdlib default, 0.5 s, slows stops)."""
"""Prompt lines longer than this are cut on the console; the prompts file has them whole."""

HITL_URI: Final = "https://kagent.dev/extensions/hitl/v1"
APPROVAL_EVENT_TYPE: Final = "oom-kill"
"""The sample event whose task asks for a tool approval before it investigates."""

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
TASK_NOT_FOUND: Final = -32001
VERSION_NOT_SUPPORTED: Final = -32009


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Received:
    """One prompt as the agent saw it (also one line of the prompts file)."""

    agent: str
    wire: str
    message_id: str
    context_id: str
    task_id: str
    prompt: str
    user_id: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    repeat: bool = False
    time: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "agent": self.agent,
            "wire": self.wire,
            "messageId": self.message_id,
            "contextId": self.context_id,
            "taskId": self.task_id,
            "userId": self.user_id,
            "metadata": self.metadata,
            "repeat": self.repeat,
            "prompt": self.prompt,
        }


def agent_card(name: str, url: str) -> dict[str, Any]:
    """A card that offers JSON-RPC in 1.0 (``supportedInterfaces``) and 0.3 (top level)."""
    return {
        "name": name,
        "description": "khook demo agent: prints every prompt it receives and does nothing else",
        "version": "1.0.0",
        "protocolVersion": "0.3.0",
        "url": url,
        "preferredTransport": "JSONRPC",
        "supportedInterfaces": [
            {"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
            {"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
        ],
        "capabilities": {"streaming": False, "pushNotifications": False},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": [
            {
                "id": "show-prompts",
                "name": "Show prompts",
                "tags": ["demo"],
                "description": "Prints the prompt and answers with a submitted task.",
            }
        ],
    }


class DemoAgent:
    """Every kagent-style agent at once, on one port.

    Args:
        prompts_path: JSON-lines file each received prompt is appended to.
        out: where prompts are printed (None: not printed).
        lock: shared with other console writers so lines do not interleave.

    Example::

        agent = DemoAgent(Path(".khook/agent-prompts.jsonl")).start(8090)
        # KAGENT_API_URL=agent.url; POST {agent.url}/api/a2a/kagent/k8s-agent/
        agent.stop()
    """

    def __init__(
        self,
        prompts_path: Path,
        out: TextIO | None = sys.stdout,
        lock: threading.Lock | None = None,
        complete_after: float = COMPLETE_AFTER_S,
    ) -> None:
        self.prompts_path = prompts_path
        self.out = out
        self.complete_after = complete_after
        self._sent_at: dict[str, float] = {}  # task id -> monotonic time of its send
        self.received: deque[Received] = deque(maxlen=MAX_REMEMBERED)
        self._tasks: dict[str, dict[str, Any]] = {}  # task id -> 0.3-shaped task
        self._by_message: dict[tuple[str, str], str] = {}  # (agent, messageId) -> task id
        self._lock = threading.Lock()
        self._console = lock or threading.Lock()
        self._server = LoopbackServer(_Handler, self, "demo-agent")

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, port: int = 0) -> DemoAgent:
        self._server.start(port)
        return self

    def stop(self) -> None:
        self._server.stop()

    # -- JSON-RPC -------------------------------------------------------------------------

    def answer(self, agent: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        """The JSON-RPC response to one request body (errors included, as HTTP 200 bodies)."""
        request_id: Any = None
        try:
            try:
                request = json.loads(body)
            except ValueError:
                raise RpcError(PARSE_ERROR, "request body is not JSON") from None
            if (
                not isinstance(request, dict)
                or request.get("jsonrpc") != "2.0"
                or not isinstance(request.get("method"), str)
            ):
                raise RpcError(INVALID_REQUEST, "not a JSON-RPC 2.0 request")
            request_id = request.get("id")
            params = request.get("params")
            if not isinstance(params, dict):
                raise RpcError(INVALID_PARAMS, "params must be an object")
            result = self._call(agent, request["method"], params, headers)
        except RpcError as exc:
            return {
                "jsonrpc": "2.0",
                "id": request_id,
                "error": {"code": exc.code, "message": str(exc)},
            }
        return {"jsonrpc": "2.0", "id": request_id, "result": result}

    def _call(
        self, agent: str, method: str, params: dict[str, Any], headers: dict[str, str]
    ) -> dict[str, Any]:
        version = headers.get("a2a-version", "").strip()
        v1 = version.startswith("1.")
        if method in ("SendMessage", "GetTask") and not v1:
            raise RpcError(
                VERSION_NOT_SUPPORTED,
                f"A2A version {version or '(none)'} not supported for {method}: "
                "send A2A-Version: 1.0",
            )
        if method in ("message/send", "tasks/get") and v1:
            raise RpcError(
                METHOD_NOT_FOUND,
                f"method {method} is A2A 0.3; with A2A-Version 1.0 use SendMessage / GetTask",
            )
        task: dict[str, Any] | None
        if method in ("message/send", "SendMessage"):
            task = self._send(agent, params, "1.0" if v1 else "0.3", headers)
        elif method in ("tasks/get", "GetTask"):
            task = self._progress(str(params.get("id", "")))
            if task is None:
                raise RpcError(TASK_NOT_FOUND, f"task {params.get('id')!r} not found")
        else:
            raise RpcError(METHOD_NOT_FOUND, f"method {method!r} not found")
        return {"task": wire_1_0(task)} if v1 else task

    def _progress(self, task_id: str) -> dict[str, Any] | None:
        """The task as it stands now: ``working``, then ``completed`` with its finding."""
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None or task["status"]["state"] == "completed":
                return task
            if task.get("approval"):  # paused until the decision comes
                task["status"] = {
                    "state": "input-required",
                    "message": task["approval"],
                    "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
                }
                return task
            done = time.monotonic() - self._sent_at.get(task_id, 0.0) >= self.complete_after
            state = "completed" if done else "working"
            task["status"] = {
                "state": state,
                "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            if done:
                text = demo_finding(task["history"])
                if task.get("decision"):
                    text += f" The restart_pod call was {task['decision']}."
                task["artifacts"] = [
                    {
                        "artifactId": f"{task_id}-finding",
                        "name": "finding",
                        "parts": [{"kind": "text", "text": text}],
                    }
                ]
            return task

    def _send(
        self, agent: str, params: dict[str, Any], wire: str, headers: dict[str, str]
    ) -> dict[str, Any]:
        message = params.get("message")
        if not isinstance(message, dict):
            raise RpcError(INVALID_PARAMS, "params.message must be an object")
        message_id = message.get("messageId")
        if not isinstance(message_id, str) or not message_id:
            raise RpcError(
                INVALID_REQUEST if wire == "0.3" else INVALID_PARAMS,
                "message.messageId is required",
            )
        role = message.get("role")
        expected = "ROLE_USER" if wire == "1.0" else "user"
        if role != expected:
            raise RpcError(INVALID_PARAMS, f"message.role must be {expected!r}, not {role!r}")
        prompt = text_of(message.get("parts"))
        metadata = message.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        hitl = HITL_URI in headers.get("a2a-extensions", "")
        if hitl and message.get("taskId") and isinstance(metadata.get(HITL_URI), dict):
            return self._decide(agent, str(message["taskId"]), metadata[HITL_URI], wire, message_id)
        context_id = str(message.get("contextId") or uuid.uuid4())
        with self._lock:
            task_id = self._by_message.get((agent, message_id))
            repeat = task_id is not None
            if task_id is None:
                task_id = uuid.uuid4().hex
                self._by_message[(agent, message_id)] = task_id
                self._sent_at[task_id] = time.monotonic()
                history = {
                    "kind": "message",
                    "role": "user",
                    "messageId": message_id,
                    "contextId": context_id,
                    "parts": [{"kind": "text", "text": prompt}],
                }
                self._tasks[task_id] = {
                    "kind": "task",
                    "id": task_id,
                    "contextId": context_id,
                    "status": {
                        "state": "submitted",
                        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
                    },
                    "history": [history],
                }
                if hitl and metadata.get("khook.eventType") == APPROVAL_EVENT_TYPE:
                    self._tasks[task_id]["approval"] = approval_message(
                        task_id, context_id, str(metadata.get("khook.resource", ""))
                    )
            task = self._tasks[task_id]
        self._record(
            Received(
                agent=agent,
                wire=wire,
                message_id=message_id,
                context_id=str(task["contextId"]),
                task_id=task_id,
                prompt=prompt,
                user_id=headers.get("x-user-id", ""),
                repeat=repeat,
                metadata=metadata,
            )
        )
        return task

    def _decide(
        self, agent: str, task_id: str, decision: dict[str, Any], wire: str, message_id: str
    ) -> dict[str, Any]:
        """A HITL decision on a paused task, checked as kagent checks it; the task resumes."""
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                raise RpcError(TASK_NOT_FOUND, f"task {task_id!r} not found")
            request = task.get("approval")
            if not request:
                raise RpcError(INVALID_PARAMS, f"task {task_id} is not waiting for a decision")
            wanted = [t["id"] for t in request["metadata"][HITL_URI]["tools"]]
            answers = decision.get("approvals")
            if (
                decision.get("type") != "tool_approval_response"
                or not isinstance(answers, list)
                or [a.get("id") for a in answers] != wanted
            ):
                raise RpcError(INVALID_PARAMS, f"every pending call must be answered: {wanted}")
            verdict = answers[0]
            task["decision"] = (
                "approved"
                if verdict.get("approved")
                else (f"rejected ({verdict.get('rejection_reason') or 'no reason given'})")
            )
            task["approval"] = None
            task["status"] = {
                "state": "working",
                "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            self._sent_at[task_id] = time.monotonic()
        self._record(
            Received(
                agent=agent,
                wire=wire,
                message_id=message_id,
                context_id=str(task["contextId"]),
                task_id=task_id,
                prompt=f"(decision) restart_pod {task['decision']}",
            )
        )
        return task

    def _record(self, received: Received) -> None:
        # Printed before it is appended to the file, so whoever watches the file finds the
        # console line already there.
        if self.out is not None:
            with self._console:
                self.out.write(render(received))
                self.out.flush()
        with self._lock:
            self.received.append(received)
            self.prompts_path.parent.mkdir(parents=True, exist_ok=True)
            with self.prompts_path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(received.to_json(), ensure_ascii=False) + "\n")


def render(received: Received, width: int = CONSOLE_LINE_CHARS) -> str:
    """How a prompt looks on the console: indented, very long lines (the event data) cut."""
    what = f"A2A {received.wire}, messageId {received.message_id}"
    if received.repeat:
        return f"agent {received.agent}: repeated message ({what}): same task, no new run\n"
    lines = []
    for line in received.prompt.splitlines():
        if len(line) > width:
            line = f"{line[:width]}… ({len(line) - width} more characters)"
        lines.append(f"    {line}")
    body = "\n".join(lines)
    return f"\nagent {received.agent} received a prompt ({what}):\n{body}\n\n"


def text_of(parts: Any) -> str:
    """The text of a message's parts: 0.3 ``{"kind": "text", "text"}`` or 1.0 ``{"text"}``.

    Raises:
        RpcError: no text part.
    """
    if not isinstance(parts, list):
        raise RpcError(INVALID_PARAMS, "message.parts must be a list")
    texts = [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]
    if not texts:
        raise RpcError(INVALID_PARAMS, "message.parts has no text part")
    return "\n".join(texts)


def approval_message(task_id: str, context_id: str, resource: str) -> dict[str, Any]:
    """The paused task's status message: kagent's tool approval request for one call."""
    hint = "Restarting the Pod needs approval"
    return {
        "kind": "message",
        "role": "agent",
        "messageId": f"{task_id}-ask",
        "taskId": task_id,
        "contextId": context_id,
        "parts": [{"kind": "text", "text": hint}],
        "extensions": [HITL_URI],
        "metadata": {
            HITL_URI: {
                "type": "tool_approval_request",
                "hint": hint,
                "tools": [
                    {
                        "id": f"{task_id}-restart",
                        "call_id": "call-1",
                        "name": "restart_pod",
                        "args": {"resource": resource},
                    }
                ],
            }
        },
    }


def wire_1_0(task: dict[str, Any]) -> dict[str, Any]:
    """A stored (0.3-shaped) task as A2A 1.0 spells it."""
    status = task["status"]
    history = [
        {
            "role": "ROLE_USER",
            "messageId": m["messageId"],
            "contextId": m["contextId"],
            "parts": [{"text": p["text"]} for p in m["parts"]],
        }
        for m in task["history"]
    ]
    shaped = {
        "id": task["id"],
        "contextId": task["contextId"],
        "status": {
            "state": "TASK_STATE_" + status["state"].upper().replace("-", "_"),
            "timestamp": status["timestamp"],
        },
        "history": history,
    }
    paused = status.get("message")
    if paused:
        shaped["status"]["message"] = {
            "role": "ROLE_AGENT",
            "messageId": paused["messageId"],
            "taskId": task["id"],
            "contextId": task["contextId"],
            "parts": [{"text": p["text"]} for p in paused["parts"]],
            "extensions": paused["extensions"],
            "metadata": paused["metadata"],
        }
    if "artifacts" in task:
        shaped["artifacts"] = [
            {
                "artifactId": a["artifactId"],
                "name": a["name"],
                "parts": [{"text": p["text"]} for p in a["parts"]],
            }
            for a in task["artifacts"]
        ]
    return shaped


def demo_finding(history: list[dict[str, Any]]) -> str:
    """A short finding naming what the prompt was about (its first line)."""
    first = ""
    for message in history:
        for part in message.get("parts") or []:
            first = str(part.get("text", "")).strip().splitlines()[0] if part.get("text") else ""
            break
        break
    if len(first) > 80:
        first = first[:79] + "…"
    return (
        f"Demo finding: read the prompt ({first!r}); nothing was checked or changed, "
        "this demo agent only shows prompts."
    )


class _Handler(BaseHTTPRequestHandler):
    server_version = "khook-demo-agent"
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY the second waits for the
    # client's delayed ACK, about 40 ms a request on loopback.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the prompts are what the console is for."""

    def _agent(self) -> DemoAgent:
        assert isinstance(self.server, OwnedServer)
        agent: DemoAgent = self.server.owner
        return agent

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        match = AGENT_PATH.match(path)
        if path == "/":
            self._send(HTTPStatus.OK, b"khook demo agent\n", "text/plain")
        elif match and match.group(3) in CARD_FILES:
            namespace, name = unquote(match.group(1)), unquote(match.group(2))
            host = self.headers.get("Host") or f"127.0.0.1:{self._agent().port}"
            url = f"http://{host}/api/a2a/{match.group(1)}/{match.group(2)}/"
            card = agent_card(f"{namespace}/{name}", url)
            self._send(HTTPStatus.OK, json.dumps(card).encode(), "application/json")
        else:
            self._send(HTTPStatus.NOT_FOUND, f"not found: {path}\n".encode(), "text/plain")

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        match = AGENT_PATH.match(path)
        length = int(self.headers.get("Content-Length") or 0)
        if match is None or match.group(3):
            self._send(HTTPStatus.NOT_FOUND, f"not found: {path}\n".encode(), "text/plain")
            return
        if length > MAX_BODY_BYTES:
            self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b"body too large\n", "text/plain")
            return
        body = self.rfile.read(length)
        agent = f"{unquote(match.group(1))}/{unquote(match.group(2))}"
        headers = {k.lower(): v for k, v in self.headers.items()}
        answer = self._agent().answer(agent, body, headers)
        self._send(HTTPStatus.OK, json.dumps(answer).encode(), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
