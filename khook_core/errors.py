"""The errors khook raises, classified by what the caller must do.

Hierarchy::

    KhookError
    ├── ConfigError            configuration is invalid; carries one Problem per finding
    ├── PluginLoadError        an enabled source plugin failed to import or validate
    ├── InvalidEventError      permanent: bad input; answer 4xx or log-and-acknowledge
    │   └── AuthError          the request is not authenticated (HTTP 401)
    ├── DispatchError          the agent refused the request; retrying will not help
    └── TransientError         retryable: release claims, answer 5xx or raise for redelivery
        └── OutcomeUnknownError  the request left but no answer came: it may have arrived

Functions catch ``InvalidEventError`` and ``TransientError`` and nothing broader.
Third-party errors are wrapped at the boundary with the original chained as ``__cause__``.
"""

from __future__ import annotations

from dataclasses import dataclass


class KhookError(Exception):
    """Base of every error khook raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One finding of configuration validation, printable as ``file:line: message``."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


class ConfigError(KhookError):
    """Configuration is invalid. ``problems`` lists every finding, not only the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class PluginLoadError(KhookError):
    """A source plugin could not be imported, instantiated or configured.

    The text is one line, ``file:line: plugin NAME: reason`` when the failure is in a file
    (plugins.yaml), else ``plugin NAME: reason``; ``name``, ``reason``, ``file`` and ``line``
    carry the same data as fields.
    """

    def __init__(
        self, name: str, reason: str, *, file: str | None = None, line: int | None = None
    ) -> None:
        self.name = name
        self.reason = reason
        self.file = file
        self.line = line
        message = f"plugin {name}: {reason}"
        super().__init__(str(Problem(file, line, message)) if file is not None else message)

    def problem(self, default_file: str) -> Problem:
        """This failure as a configuration problem, in ``default_file`` when it names none."""
        return Problem(self.file or default_file, self.line, f"plugin {self.name}: {self.reason}")


class InvalidEventError(KhookError):
    """The input can never be processed: retrying the same bytes will fail the same way.

    ``status`` is the HTTP status an HTTP entry point answers; ``field`` names the offending
    field where one is known, so the JSON error body is built from data, not from the text.
    """

    status: int = 400

    def __init__(self, message: str, *, field: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if status is not None:
            self.status = status

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"error": self.message, "status": self.status}
        if self.field is not None:
            body["field"] = self.field
        return body


class AuthError(InvalidEventError):
    """Missing or wrong credentials."""

    status = 401


class DispatchError(KhookError):
    """The target answered with a permanent refusal (for example HTTP 4xx)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TransientError(KhookError):
    """A temporary failure (agent unreachable, store unavailable): retry later."""


class OutcomeUnknownError(TransientError):
    """A send that may have reached its target: the request left, the answer never came (a
    read timeout, a dropped connection). Its claim is kept and marked uncertain rather than
    released, so the retry asks the target before sending again."""
