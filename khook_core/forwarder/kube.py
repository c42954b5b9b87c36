"""The forwarder's use of the official ``kubernetes`` client: connection, endpoints, raw watch.

Only this module and ``watching`` touch the client. Objects stay plain dicts from the wire to
Pub/Sub: the data we publish must be the Event exactly as the API returned it, and building the
client's model objects for every Event would only cost time and memory.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client, config, watch

from khook_core.forwarder.config import CORE_API, ForwarderSettings
from khook_core.forwarder.owners import OwnerFetch

ListFn = Callable[..., Any]
logger = logging.getLogger(__name__)

OWNER_LOOKUP_TIMEOUT = 5.0
"""Seconds for one owner ``get``: it runs on a watch thread, which must not stall for long."""


class RawWatch(watch.Watch):
    """``kubernetes.watch.Watch`` that parses each line once and never builds model objects.

    The stock ``unmarshal_event`` re-serialises every object and deserialises it into a model;
    here ``object`` and ``raw_object`` are the same dict. ``resource_version`` follows every
    ADDED/MODIFIED/DELETED/BOOKMARK line, as the stock class does. Everything else (the HTTP
    stream, chunk splitting, ERROR lines raised as ``ApiException``, ``stop()``) is the client's.
    """

    def __init__(self) -> None:
        super().__init__(return_type="object")  # type: ignore[no-untyped-call]

    def unmarshal_event(self, data: str, return_type: Any) -> dict[str, Any] | None:
        if not data or data.isspace():
            return None
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


@dataclass(frozen=True)
class EventsEndpoint:
    """One list/watch target: an API's Events, cluster-wide or in one namespace."""

    api: str
    namespace: str | None
    list_fn: ListFn

    def describe(self) -> str:
        return f"{self.api} events in {self.namespace or 'all namespaces'}"


def api_client(settings: ForwarderSettings) -> client.ApiClient:
    """An ``ApiClient`` for the configured URL, else in-cluster credentials, else kubeconfig."""
    if settings.kube_api_url:
        cfg = client.Configuration()
        cfg.host = settings.kube_api_url.rstrip("/")
        return client.ApiClient(cfg)
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config(config_file=settings.kubeconfig)  # type: ignore[no-untyped-call]
    return client.ApiClient()


def endpoints(api_client_: client.ApiClient, settings: ForwarderSettings) -> list[EventsEndpoint]:
    """One endpoint per configured namespace, or a single cluster-wide one."""
    everywhere: ListFn
    namespaced: ListFn
    if settings.api == CORE_API:
        core = client.CoreV1Api(api_client_)
        everywhere, namespaced = core.list_event_for_all_namespaces, core.list_namespaced_event
    else:
        events = client.EventsV1Api(api_client_)
        everywhere, namespaced = events.list_event_for_all_namespaces, events.list_namespaced_event
    if not settings.namespaces:
        return [EventsEndpoint(settings.api, None, everywhere)]
    return [
        EventsEndpoint(settings.api, ns, functools.partial(namespaced, namespace=ns))
        for ns in settings.namespaces
    ]


def owner_fetch(api_client_: client.ApiClient) -> OwnerFetch:
    """Reads a Pod, ReplicaSet or Job as a plain dict (its ``ownerReferences`` are all the
    resolver needs); ``None`` when the object cannot be read (gone, forbidden, API down).

    Through the ``ApiClient``'s own request path and the objects' URLs rather than the typed
    ``AppsV1Api`` and ``BatchV1Api``: loading those costs the forwarder some 25 MiB of RSS.
    """

    def fetch(kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        path = OWNER_PATHS.get(kind)
        if path is None:
            return None
        try:
            method, url, headers, _, _ = api_client_.param_serialize(
                "GET",
                path,
                path_params={"namespace": namespace, "name": name},
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
            )
            response = api_client_.call_api(
                method, url, header_params=headers, _request_timeout=OWNER_LOOKUP_TIMEOUT
            )
            response.read()  # type: ignore[no-untyped-call]
            if response.status != 200:
                logger.info("no owner data for %s %s/%s: HTTP %s", kind, namespace, name,
                            response.status)
                return None
            obj = json.loads(response.data or b"null")
        except (client.ApiException, OSError, ValueError, urllib3.exceptions.HTTPError) as exc:
            logger.info(
                "no owner data for %s %s/%s: %s", kind, namespace, name, getattr(exc, "reason", exc)
            )
            return None
        return obj if isinstance(obj, dict) else None

    return fetch


OWNER_PATHS = {
    "Pod": "/api/v1/namespaces/{namespace}/pods/{name}",
    "ReplicaSet": "/apis/apps/v1/namespaces/{namespace}/replicasets/{name}",
    "Job": "/apis/batch/v1/namespaces/{namespace}/jobs/{name}",
}
"""The ``get`` path of each kind whose controller the resolver reads."""
