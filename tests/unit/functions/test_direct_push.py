"""A checked Pub/Sub push goes straight to the function, with the framework's answer and event.

``transport.serve_pushes`` lets the guard call a CloudEvent function's target itself once it
has checked a push delivery, instead of functions-framework's dispatch. Each test sends the
same body both ways through the real functions-framework app (a Flask test client kept in a
``with`` block takes the framework's path) and compares what the function got and what the
client got; the framework's view is counted, so a request that should skip it cannot pass
through it unnoticed.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import flask
import pytest

from khook_core.errors import TransientError
from khook_core.transport.guard import RequestGuard
from tests.support.sources import push_body

pytestmark = pytest.mark.unit

MAIN = """\
import functions_framework

from khook_core import transport
from khook_core.transport import guard

guard.install_current(source="kubernetes", signature="cloudevent", body_read_timeout=5.0)
SEEN = []
RAISE = []


@transport.serve_pushes
@functions_framework.cloud_event
def handle(cloud_event):
    SEEN.append(cloud_event)
    if RAISE:
        raise RAISE[0]
"""
TOPIC_PATH = "/projects/p1/topics/khook-test"
FUNCTIONS = ("kubernetes", "kafka", "cdc", "gcp", "sweep")


@dataclass
class Served:
    """A function's app, what its target was called with, and how often the framework's view
    was entered."""

    app: flask.Flask
    seen: list[Any]
    raise_: list[BaseException]
    views: list[str] = field(default_factory=list)

    def post(self, body: bytes, path: str = "/", *, framework: bool = False) -> Any:
        client = self.app.test_client()
        if not framework:
            return client.post(path, data=body, content_type="application/json")
        with client:  # a client keeping contexts takes the framework's path
            return client.post(path, data=body, content_type="application/json")


def count_views(app: flask.Flask, views: list[str]) -> None:
    endpoint = "cloudevent"
    view = app.view_functions[endpoint]

    def counted(*args: Any, **kwargs: Any) -> Any:
        views.append(flask.request.path)
        return view(*args, **kwargs)

    app.view_functions[endpoint] = counted


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Served:
    import functions_framework

    monkeypatch.delenv("LOG_EXECUTION_ID", raising=False)
    main = tmp_path / "main.py"
    main.write_text(MAIN)
    app = functions_framework.create_app("handle", str(main), "cloudevent")  # type: ignore[no-untyped-call]
    module = sys.modules["main"]
    result = Served(app, module.SEEN, module.RAISE)
    count_views(app, result.views)
    return result


def body(message_id: str = "m1", **message: Any) -> bytes:
    document = push_body(b'{"kind": "Event"}', {"khook.source": "kubernetes"}, message_id)
    document["message"].update(message)
    return json.dumps(document).encode()


def answer(response: Any) -> tuple[int, dict[str, str], bytes]:
    return response.status_code, dict(response.headers), response.get_data()


@pytest.mark.parametrize("path", ["/", TOPIC_PATH])
def test_a_checked_push_reaches_the_function_without_the_framework_s_view(
    served: Served, path: str
) -> None:
    direct = served.post(body(), path)
    assert served.views == []
    framework = served.post(body(), path, framework=True)
    assert served.views == [path]

    assert answer(direct) == answer(framework)
    assert direct.status_code == 200
    assert direct.get_json() == {"status": 200, "acknowledged": True}
    assert direct.headers["Content-Type"] == "application/json"
    first, second = served.seen
    assert first == second  # every attribute and the data, as the framework converts them
    assert first["source"].endswith(TOPIC_PATH if path != "/" else "/")
    assert first.data["message"]["messageId"] == "m1"


def test_a_push_without_data_or_publish_time_is_converted_as_the_framework_does(
    served: Served,
) -> None:
    document = json.loads(body())
    del document["message"]["data"], document["message"]["publishTime"]
    served.post(json.dumps(document).encode())
    served.post(json.dumps(document).encode(), framework=True)
    assert served.views == ["/"]
    first, second = served.seen
    stamped = [event.data["message"].pop("publishTime") for event in (first, second)]
    assert stamped == [first["time"], second["time"]]  # the conversion stamps it, both ways
    assert first.data == second.data
    assert first.data["message"]["data"] == ""


@pytest.mark.parametrize(
    "raised", [TransientError("retry for redelivery"), RuntimeError("boom")], ids=type
)
def test_an_exception_gets_the_framework_s_answer_and_log_line(
    served: Served, raised: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    served.raise_.append(raised)
    with caplog.at_level(logging.ERROR):
        direct = served.post(body())
        assert served.views == []
        framework = served.post(body(), framework=True)
    assert answer(direct) == answer(framework)
    assert direct.status_code == 500
    assert direct.headers["X-Google-Status"] == "crash"
    assert direct.get_json()["error"].startswith(f"internal error ({type(raised).__name__})")
    logged = [r.getMessage() for r in caplog.records if r.name == served.app.logger.name]
    assert logged == ["Exception on / [POST]"] * 2


def test_what_the_framework_must_dispatch_takes_its_path(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    served.post(body("plain"))
    assert served.views == []  # the plain request is served directly ...

    for path in ("/a//b", "/a/", "/a b"):  # ... one the router might rewrite is not
        served.post(body(path), path)
    assert served.views == ["/a//b", "/a/", "/a b"]

    served.views.clear()
    connected = lambda *args, **kwargs: None  # noqa: E731
    flask.request_started.connect(connected, served.app)
    try:
        served.post(body("signal"))
    finally:
        flask.request_started.disconnect(connected, served.app)
    assert served.views == ["/"]  # a signal receiver would miss the request


def test_a_request_hook_takes_the_framework_s_path(tmp_path: Path) -> None:
    import functions_framework

    main = tmp_path / "main.py"
    main.write_text(MAIN + "\nimport flask\nflask.current_app.before_request(lambda: None)\n")
    app = functions_framework.create_app("handle", str(main), "cloudevent")  # type: ignore[no-untyped-call]
    views: list[str] = []
    count_views(app, views)
    app.test_client().post("/", data=body(), content_type="application/json")
    assert views == ["/"]


def test_execution_id_logging_takes_the_framework_s_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import functions_framework

    monkeypatch.setenv("LOG_EXECUTION_ID", "true")
    # its logging set-up (a dictConfig that disables every existing logger) is not under test
    monkeypatch.setattr(functions_framework, "_configure_app_execution_id_logging", lambda: None)
    main = tmp_path / "main.py"
    main.write_text(MAIN)
    app = functions_framework.create_app("handle", str(main), "cloudevent")  # type: ignore[no-untyped-call]
    assert isinstance(app.wsgi_app, RequestGuard)
    assert app.wsgi_app.direct is None


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_cloudevent_function_serves_checked_pushes_directly(
    name: str,
    function_env: Callable[..., Path],
    cloudevent_client: Callable[[str], Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LOG_EXECUTION_ID", raising=False)
    plugins = f"plugins:\n  - name: {name}\n" if name != "sweep" else "plugins: []\n"
    function_env(plugins=plugins)
    client = cloudevent_client(name)
    guarded = client.application.wsgi_app
    assert isinstance(guarded, RequestGuard)
    assert guarded.direct is not None
    assert guarded.direct.function is sys.modules["main"].handle
