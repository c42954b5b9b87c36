"""The dispatcher for ``KHOOK_DISPATCH=auto``: each hook's target picks A2A or webhook.

Both share one ``httpx.Client``, so a function instance keeps one connection pool (and one set
of keep-alive connections to kagent) however many hooks it serves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import httpx

from khook_core.dispatch.a2a import A2ADispatcher
from khook_core.dispatch.base import DispatchRequest, DispatchResult
from khook_core.dispatch.retry import new_client
from khook_core.dispatch.webhook import WebhookDispatcher
from khook_core.errors import DispatchError
from khook_core.settings import DispatchSettings

if TYPE_CHECKING:
    from khook_core.settings import Settings


class RoutingDispatcher:
    """``agent`` and ``a2a`` targets go to ``A2ADispatcher``, ``webhook`` to
    ``WebhookDispatcher``."""

    def __init__(
        self,
        settings: DispatchSettings,
        *,
        client: httpx.Client | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self._own_client = client is None
        self.client = client or new_client(settings.connect_timeout)
        self.a2a = A2ADispatcher(settings, client=self.client)
        self.webhook = WebhookDispatcher(settings, client=self.client, environ=environ)

    @classmethod
    def from_settings(cls, settings: Settings) -> RoutingDispatcher:
        """The dispatch group of the settings tree (``KAGENT_*``, ``KHOOK_*``, validated when
        the tree was read) and its environment, where webhook targets find the variables
        hooks name."""
        return cls(settings.dispatchers, environ=settings.environ)

    def dispatch(self, request: DispatchRequest) -> DispatchResult:
        kind = request.target.kind
        if kind in ("agent", "a2a"):
            return self.a2a.dispatch(request)
        if kind == "webhook":
            return self.webhook.dispatch(request)
        raise DispatchError(
            f"hook {request.hook}: unknown target kind {kind!r} (agent, a2a or webhook)"
        )

    def close(self) -> None:
        if self._own_client:
            self.client.close()
