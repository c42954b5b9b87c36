"""An HTTP function continues the trace of a sender that sends a ``traceparent`` header.

functions-framework's app for ``functions/alertmanager`` (in process) with
``KHOOK_TELEMETRY=console``: the spans it prints must carry the sender's trace id, and the
receive span's parent must be the sender's span.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import functions_framework
import pytest

from khook_core.runtime import get_runtime
from tests.support.configdir import make_config, restart_hook
from tests.support.paths import REPO

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_SPAN = "b7ad6b7169203331"
SAMPLE = REPO / "config" / "samples" / "alertmanager" / "disk-full.json"


def printed_spans(out: str) -> list[dict[str, Any]]:
    decoder = json.JSONDecoder()
    spans, at = [], out.find('{\n    "name"')
    while at != -1:
        span, end = decoder.raw_decode(out, at)
        spans.append(span)
        at = out.find('{\n    "name"', end)
    return spans


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.setenv("KHOOK_CONFIG_DIR", str(make_config(tmp_path, restart_hook())))
    monkeypatch.setenv("KHOOK_STATE", "memory")
    monkeypatch.setenv("KHOOK_DISPATCH", "dry-run")
    monkeypatch.setenv("KHOOK_ALERTMANAGER_ALLOW_UNAUTHENTICATED", "true")
    monkeypatch.setenv("KHOOK_TELEMETRY", "console")
    main = REPO / "functions" / "alertmanager" / "main.py"
    yield functions_framework.create_app("handle", str(main), "http")  # type: ignore[no-untyped-call]
    get_runtime().close()


def test_a_senders_traceparent_is_the_parent_of_the_functions_spans(
    capsys: pytest.CaptureFixture[str],  # first: the console exporter keeps the stdout it found
    app: object,
    wait_until: Callable[..., None],
):
    client = app.test_client()  # type: ignore[attr-defined]
    answer = client.post(
        "/",
        data=SAMPLE.read_bytes(),
        headers={
            "Content-Type": "application/json",
            "traceparent": f"00-{TRACE_ID}-{PARENT_SPAN}-01",
        },
    )

    assert answer.status_code == 200, answer.get_data(as_text=True)
    out: list[str] = []

    def printed() -> dict[str, dict[str, Any]]:
        out.append(capsys.readouterr().out)
        return {span["name"]: span for span in printed_spans("".join(out))}

    # Exported once the SDK loads, after the answer (off the request path).
    wait_until(lambda: {"receive alertmanager", "normalize"} <= set(printed()), what="the spans")
    spans = printed()
    received = spans["receive alertmanager"]
    assert received["parent_id"] == f"0x{PARENT_SPAN}"
    assert received["kind"] == "SpanKind.SERVER"
    assert {s["context"]["trace_id"] for s in spans.values()} == {f"0x{TRACE_ID}"}
