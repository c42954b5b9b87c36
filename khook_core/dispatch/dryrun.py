"""The dry-run dispatcher: logs what would be sent and remembers it, sends nothing.

``KHOOK_DISPATCH=dry-run`` forces it everywhere (trials, replays, tests). ``requests`` keeps the
most recent requests so tests can assert on them, the way httpx's MockTransport serves tests.
"""

from __future__ import annotations

import logging
from collections import deque

from khook_core.dispatch.base import DispatchRequest, DispatchResult

logger = logging.getLogger(__name__)

MAX_REMEMBERED = 10_000


class DryRunDispatcher:
    def __init__(self) -> None:
        self.requests: deque[DispatchRequest] = deque(maxlen=MAX_REMEMBERED)

    def dispatch(self, request: DispatchRequest) -> DispatchResult:
        self.requests.append(request)
        if logger.isEnabledFor(logging.INFO):  # the log line's arguments cost more than the rest
            self._log(request)
        return DispatchResult(task_id=f"dry-run-{request.message_id[-12:]}", state="dry-run")

    @staticmethod
    def _log(request: DispatchRequest) -> None:
        logger.info(
            "dry-run: would send %s event %s on %s to %s",
            request.event.type,
            request.event.id,
            request.event.resource.ref(),
            request.target.label(),
            extra={
                "labels": {
                    "hook": request.hook,
                    "message_id": request.message_id,
                    "dedup_key": request.key,
                },
                "prompt": request.prompt,
            },
        )

    def close(self) -> None:
        """Nothing to release."""
