"""The functions of the working tree, each served by its own functions-framework process.

A function is a folder ``functions/<name>/`` whose ``main.py`` defines ``handle``; its
signature is read from the decorator, so a new function joins the stack without a change
here. CloudEvent functions are fed by a push subscription to topic ``khook-<name>``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from khook_local.processes import Child, wait_http

TARGET: Final = "handle"
READY_DEADLINE_S: Final = 90.0
"""Five cold starts share two cores; without bytecode one takes seconds."""


@dataclass(frozen=True)
class FunctionSpec:
    """One deployable function."""

    name: str
    source: Path
    signature: Literal["http", "cloudevent"]

    @property
    def topic(self) -> str | None:
        """The Pub/Sub topic feeding a CloudEvent function; None for HTTP functions."""
        return f"khook-{self.name}" if self.signature == "cloudevent" else None


def discover(root: Path) -> list[FunctionSpec]:
    """Every ``functions/*/main.py`` under ``root``, sorted by name."""
    specs = []
    for main in sorted((root / "functions").glob("*/main.py")):
        text = main.read_text(encoding="utf-8")
        signature: Literal["http", "cloudevent"] = (
            "cloudevent" if "@functions_framework.cloud_event" in text else "http"
        )
        specs.append(FunctionSpec(main.parent.name, main, signature))
    return specs


@dataclass
class FunctionProcess:
    """A started function: its process, port and URL."""

    spec: FunctionSpec
    port: int
    child: Child

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def push_endpoint(self, project: str) -> str:
        """Where Pub/Sub pushes: the topic path lets functions-framework build the CloudEvent
        ``source`` as Eventarc does (a push to ``/`` gets an empty topic)."""
        return f"http://127.0.0.1:{self.port}/projects/{project}/topics/{self.spec.topic}"

    def wait_ready(self, deadline_s: float = READY_DEADLINE_S) -> None:
        wait_http(self.url, self.child, deadline_s)


SERVER_MODULE: Final = "khook_local.server"
"""functions-framework's app on gunicorn with the self-hosted settings (threads, JSON errors);
also the marker that finds the process again."""


def start_function(
    spec: FunctionSpec, port: int, env: Mapping[str, str], log_dir: Path, cwd: Path
) -> FunctionProcess:
    """Serve ``spec`` on 127.0.0.1:port with ``SERVER_MODULE`` (not waited)."""
    argv = [
        sys.executable,
        "-m",
        SERVER_MODULE,
        "--target",
        TARGET,
        "--source",
        str(spec.source),
        "--signature-type",
        spec.signature,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    child = Child(f"function {spec.name}", argv, log_dir / f"function-{spec.name}.log")
    child.start(env, cwd)
    return FunctionProcess(spec, port, child)
