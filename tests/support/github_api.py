"""A local stand-in for GitHub's REST API that checks every request against GitHub's published
OpenAPI description (the operations khook calls, from the ``@octokit/openapi`` package, kept in
``tests/data/github-openapi`` with its licence) and records the valid ones.

A request that matches no described operation, whose path parameters or JSON body do not fit
the operation's schema, or that lacks the token and the headers GitHub's REST docs require, is
answered 422 and kept in ``invalid`` so a test sees why.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.support.paths import REPO
from tests.support.stub_server import QuietHandler, serving

DESCRIPTION = REPO / "tests" / "data" / "github-openapi" / "operations.json"


@dataclass
class GithubCall:
    operation: str
    params: dict[str, str]
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class GithubApi:
    url: str
    token: str
    calls: list[GithubCall] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)


def _operations() -> list[tuple[re.Pattern[str], str, dict[str, Any]]]:
    described = json.loads(DESCRIPTION.read_text())
    found = []
    for path, methods in described["paths"].items():
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
        for method, operation in methods.items():
            found.append((re.compile(f"^{pattern}$"), method.upper(), operation))
    return found


def schema_errors(value: Any, schema: dict[str, Any], where: str = "body") -> list[str]:
    """What in ``value`` the JSON schema (the subset GitHub's description uses here) refuses."""
    kind = schema.get("type")
    checks = {
        "object": lambda v: isinstance(v, dict),
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
    }
    if kind in checks and not checks[kind](value):
        return [f"{where}: expected {kind}"]
    errors: list[str] = []
    if kind == "object":
        errors += [f"{where}.{n}: required" for n in schema.get("required", []) if n not in value]
        properties = schema.get("properties", {})
        for name, item in value.items():
            if name in properties:
                errors += schema_errors(item, properties[name], f"{where}.{name}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{where}.{name}: not allowed")
    return errors


def _param_errors(params: dict[str, str], operation: dict[str, Any]) -> list[str]:
    errors = []
    for param in operation.get("parameters", []):
        if param.get("in") != "path":
            continue
        value = params.get(param["name"], "")
        if param["schema"].get("type") == "integer" and not value.isdigit():
            errors.append(f"{param['name']}: expected integer, got {value!r}")
    return errors


@contextmanager
def github_api(token: str = "ghp_test") -> Iterator[GithubApi]:  # noqa: S107 - a test token
    operations = _operations()
    api = GithubApi(url="", token=token)

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            errors: list[str] = []
            match = next(
                (
                    (p.match(self.path), op)
                    for p, m, op in operations
                    if m == "POST" and p.match(self.path)
                ),
                None,
            )
            if match is None or match[0] is None:
                errors.append(f"no POST {self.path} in GitHub's description")
                self._answer(404, api, errors)
                return
            params, operation = match[0].groupdict(), match[1]
            errors += _param_errors(params, operation)
            if headers.get("authorization") != f"Bearer {api.token}":
                errors.append("Authorization: not the token")
            if headers.get("accept") != "application/vnd.github+json":
                errors.append("Accept: not application/vnd.github+json")
            if not headers.get("x-github-api-version"):
                errors.append("X-GitHub-Api-Version: missing")
            content = operation["requestBody"]["content"]
            media = headers.get("content-type", "").split(";")[0]
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
                errors.append("body: not JSON")
            if media not in content:
                errors.append(f"Content-Type {media!r} not described")
            elif body is not None:
                errors += schema_errors(body, content[media]["schema"])
            if errors:
                self._answer(422, api, errors)
                return
            api.calls.append(GithubCall(operation["operationId"], params, body, headers))
            self._answer(201, api, [])

        def _answer(self, status: int, api: GithubApi, errors: list[str]) -> None:
            api.invalid += errors
            self.answer_json(status, {"message": "; ".join(errors)} if errors else {"id": 1})

    with serving(Handler) as api.url:
        yield api
