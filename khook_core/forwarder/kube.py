"""The forwarder's Kubernetes calls on the Events path: connection, endpoints, raw watch.

Over the lean client of ``kube_http``: the official ``kubernetes`` package is loaded only for
the Hooks (``--hooks-state``, ``kubernetes_api_client``) and for a kubeconfig user that runs a
command. Objects stay plain dicts from the wire to Pub/Sub: the data we publish must be the
Event exactly as the API returned it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import urllib3

from khook_core.forwarder.config import CORE_API, ForwarderSettings
from khook_core.forwarder.kube_http import (
    ApiException,
    ConfigException,
    KubeClient,
    KubeConfig,
    in_cluster_config,
    kubeconfig_config,
)
from khook_core.forwarder.owners import OwnerFetch

if TYPE_CHECKING:
    from kubernetes import client

ListFn = Callable[..., Any]
logger = logging.getLogger(__name__)

OWNER_LOOKUP_TIMEOUT = 5.0
"""Seconds for one owner ``get``: it runs on a sender thread, whose batch waits for it."""
_WATCH_HEAD = re.compile(r'\{"type":"([A-Z]+)","object":')
"""How the API server starts every watch line (compact JSON, ``type`` first)."""
_DECODE_AT = json.JSONDecoder().raw_decode
"""One JSON value from an index of a string, and the index where it ends."""


class RawWatch:
    """One watch call as a stream of ``{"type", "object", "raw_object"}`` dicts, parsed once.

    ``object`` and ``raw_object`` are the same dict. A line in the API server's own layout
    (``{"type":"…","object":{…}}``) also carries ``raw_text``: the object's JSON text exactly as
    the server sent it, which the forwarder publishes instead of encoding the dict again.
    ``resource_version`` follows every ADDED/MODIFIED/DELETED/BOOKMARK line. An ERROR line is
    raised as ``ApiException`` with its code; an undecodable line is yielded as None. ``stop()``
    (from any thread) shuts the socket under the read, so the stream ends at once.
    """

    def __init__(self) -> None:
        self.resource_version: str | None = None
        self._response: urllib3.BaseHTTPResponse | None = None
        self._stopped = False

    def stream(self, func: ListFn, **kwargs: Any) -> Iterator[dict[str, Any] | None]:
        """Call ``func(watch=True, ...)`` once and yield its lines until the server ends it."""
        self._stopped = False
        response = self._response = func(watch=True, _preload_content=False, **kwargs)
        try:
            for line in _lines(response):
                event = self.unmarshal_event(line)
                if event is not None and event.get("type") == "ERROR":
                    obj = event["raw_object"]
                    raise ApiException(
                        status=obj.get("code"), reason=f"{obj.get('reason')}: {obj.get('message')}"
                    )
                if event is not None or line.strip():
                    yield event
                if self._stopped:
                    break
        finally:
            response.close()
            response.release_conn()
            self._response = None

    def unmarshal_event(self, data: str) -> dict[str, Any] | None:
        if not data or data.isspace():
            return None
        event = _server_line(data)
        if event is None:
            try:
                event = json.loads(data)
            except json.JSONDecodeError:
                return None
        if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
            return None
        event["raw_object"] = event["object"]
        if event.get("type") != "ERROR":
            meta = event["object"].get("metadata")
            if isinstance(meta, dict) and isinstance(meta.get("resourceVersion"), str):
                self.resource_version = meta["resourceVersion"]
        return event

    def stop(self) -> None:
        self._stopped = True
        response = self._response
        sock = getattr(getattr(response, "connection", None), "sock", None)
        if sock is not None:
            import socket

            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _server_line(line: str) -> dict[str, Any] | None:
    """``line`` parsed with its object's text kept, when it is laid out as the API server lays
    out a watch line; None for any other layout (the caller parses it the general way)."""
    head = _WATCH_HEAD.match(line)
    if head is None:
        return None
    start = head.end()
    try:
        obj, end = _DECODE_AT(line, start)
    except json.JSONDecodeError:
        return None
    if not isinstance(obj, dict) or line[end:].rstrip() != "}":
        return None
    return {"type": head[1], "object": obj, "raw_text": line[start:end]}


def _lines(response: urllib3.BaseHTTPResponse) -> Iterator[str]:
    """The response's lines as they arrive (a watch sends one JSON object a line)."""
    pending = b""
    for chunk in response.stream(amt=None, decode_content=False):
        lines = (pending + chunk).split(b"\n") if pending else chunk.split(b"\n")
        pending = lines.pop()  # the start of a line the next chunk ends
        for line in lines:
            yield line.decode("utf-8", errors="replace")
    if pending:
        yield pending.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class EventsEndpoint:
    """One list/watch target: an API's Events, cluster-wide or in one namespace."""

    api: str
    namespace: str | None
    list_fn: ListFn

    def describe(self) -> str:
        return f"{self.api} events in {self.namespace or 'all namespaces'}"


def api_client(settings: ForwarderSettings) -> KubeClient:
    """A client for the configured URL, else in-cluster credentials, else kubeconfig."""
    if settings.kube_api_url:
        return KubeClient(KubeConfig(host=settings.kube_api_url))
    try:
        config = in_cluster_config(settings.in_cluster_host, settings.in_cluster_port)
    except ConfigException:
        config = kubeconfig_config(settings.kubeconfig)
    return KubeClient(config)


def kubernetes_api_client(settings: ForwarderSettings) -> client.ApiClient:
    """An official ``ApiClient`` (the Hooks' typed calls), configured the same way."""
    from kubernetes import client, config

    if settings.kube_api_url:
        cfg = client.Configuration()
        cfg.host = settings.kube_api_url.rstrip("/")
        return client.ApiClient(cfg)
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config(config_file=settings.kubeconfig)  # type: ignore[no-untyped-call]
    return client.ApiClient()


EVENT_PATHS = {
    CORE_API: ("/api/v1/events", "/api/v1/namespaces/{namespace}/events"),
    "events.k8s.io/v1": (
        "/apis/events.k8s.io/v1/events",
        "/apis/events.k8s.io/v1/namespaces/{namespace}/events",
    ),
}
"""The list/watch paths of each Events API: cluster-wide, and in one namespace."""


def list_events(
    api: KubeClient,
    path: str,
    *,
    limit: int | None = None,
    _continue: str | None = None,
    field_selector: str | None = None,
    resource_version: str | None = None,
    allow_watch_bookmarks: bool | None = None,
    timeout_seconds: int | None = None,
    watch: bool | None = None,
    _preload_content: bool = True,
    _request_timeout: float | tuple[float, float] | None = None,
) -> urllib3.BaseHTTPResponse:
    """One list page or watch call of ``path`` (the official client's argument names)."""
    query = {
        "limit": limit,
        "continue": _continue,
        "fieldSelector": field_selector,
        "resourceVersion": resource_version,
        "allowWatchBookmarks": allow_watch_bookmarks,
        "timeoutSeconds": timeout_seconds,
        "watch": watch,
    }
    return api.request("GET", path, query=query, timeout=_request_timeout, preload=_preload_content)


def endpoints(api: KubeClient, settings: ForwarderSettings) -> list[EventsEndpoint]:
    """One endpoint per configured namespace, or a single cluster-wide one."""
    everywhere, namespaced = EVENT_PATHS[settings.api]
    if not settings.namespaces:
        return [EventsEndpoint(settings.api, None, functools.partial(list_events, api, everywhere))]
    return [
        EventsEndpoint(
            settings.api, ns, functools.partial(list_events, api, namespaced.format(namespace=ns))
        )
        for ns in settings.namespaces
    ]


def owner_fetch(api: KubeClient) -> OwnerFetch:
    """Reads a Pod, ReplicaSet or Job as a plain dict (its ``ownerReferences`` are all the
    resolver needs); ``None`` when the object cannot be read (gone, forbidden, API down)."""

    def fetch(kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        path = OWNER_PATHS.get(kind)
        if path is None:
            return None
        try:
            obj = api.get_json(
                path.format(namespace=namespace, name=name), timeout=OWNER_LOOKUP_TIMEOUT
            )
        except ApiException as exc:
            logger.info("no owner data for %s %s/%s: HTTP %s", kind, namespace, name, exc.status)
            return None
        except (OSError, ValueError, urllib3.exceptions.HTTPError) as exc:
            logger.info("no owner data for %s %s/%s: %s", kind, namespace, name, exc)
            return None
        return obj if isinstance(obj, dict) else None

    return fetch


OWNER_PATHS = {
    "Pod": "/api/v1/namespaces/{namespace}/pods/{name}",
    "ReplicaSet": "/apis/apps/v1/namespaces/{namespace}/replicasets/{name}",
    "Job": "/apis/batch/v1/namespaces/{namespace}/jobs/{name}",
}
"""The ``get`` path of each kind whose controller the resolver reads."""
