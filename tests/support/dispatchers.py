"""Dispatchers that fail on purpose, for the pipeline's and storm control's retry rules."""

from __future__ import annotations

from khook_core.dispatch.base import DispatchRequest, DispatchResult
from khook_core.dispatch.dryrun import DryRunDispatcher


class FlakyDispatcher(DryRunDispatcher):
    """Fails the first ``failures`` calls with the given error, then succeeds."""

    def __init__(self, failures: int, error: Exception) -> None:
        super().__init__()
        self.failures = failures
        self.error = error
        self.calls = 0

    def dispatch(self, request: DispatchRequest) -> DispatchResult:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return super().dispatch(request)
