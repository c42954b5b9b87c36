"""The cluster's Hooks as the live configuration: list+watch ``hooks.kagent.dev``, publish.

One ``HookWatch`` per scope (cluster-wide, or one per watched namespace) keeps the Hook
objects it has seen: a list, then a watch from the list's resourceVersion (bookmarks move it;
410 Gone, an expired resourceVersion, lists again). Every change marks the set dirty;
``HookPublisher`` waits until changes settle, validates each Hook alone
(``liveconfig.cluster.accept``) and publishes the accepted set as the next snapshot (origin
``cluster``) when it differs from the live one. An invalid Hook is logged with every problem
and left out; the others keep working. ``HookReporter`` (``hook_report``) writes each Hook's
status and Events from the publisher's verdicts and the audit trail, and the ``AgentFinding``
Events of findings reported to the cluster (``finding_events``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from khook_core.errors import ConfigError, TransientError
from khook_core.forwarder.backoff import Backoff
from khook_core.forwarder.config import ForwarderSettings
from khook_core.forwarder.finding_events import FindingEvents
from khook_core.forwarder.hook_events import FiringEvents
from khook_core.forwarder.hook_report import HookReporter, Judgements
from khook_core.forwarder.hook_status import StatusWriter
from khook_core.forwarder.kube import RawWatch
from khook_core.forwarder.kube_http import ApiException as WatchLineError
from khook_core.liveconfig import cluster, publishing, snapshot
from khook_core.state import open_config_store, open_store
from khook_core.state.base import ConfigStore

logger = logging.getLogger(__name__)

GROUP: Final = "kagent.dev"
VERSION: Final = "v1alpha2"
PLURAL: Final = "hooks"
HTTP_GONE: Final = 410
WATCH_TIMEOUT_S: Final = 300
"""Server-side length of one watch call: short enough that a silently dropped connection is
noticed, long enough to cost nothing."""
SETTLE_S: Final = 0.5
"""How long the publisher waits after a change for more (``kubectl apply -f dir/`` creates
many Hooks at once): one snapshot for the batch instead of one per Hook."""


class HookSet:
    """The Hook objects of every scope, keyed ``namespace/name``, and a dirty flag."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hooks: dict[str, dict[str, Any]] = {}
        self.changed = threading.Event()

    def replace(self, scope: str | None, objects: list[dict[str, Any]]) -> None:
        """A fresh list of ``scope`` (None: the whole cluster) replaces what it held."""
        with self._lock:
            for key in [k for k in self._hooks if scope is None or k.split("/")[0] == scope]:
                del self._hooks[key]
            for obj in objects:
                self._hooks[cluster.key_of(obj)] = obj
        self.changed.set()

    def apply(self, kind: str, obj: dict[str, Any]) -> None:
        """One watch line; a change of status or labels only (the same generation) is kept
        without marking the set dirty: the snapshot holds the spec alone."""
        key = cluster.key_of(obj)
        with self._lock:
            known = self._hooks.get(key)
            if kind == "DELETED":
                self._hooks.pop(key, None)
            else:
                self._hooks[key] = obj
        if kind == "MODIFIED" and known is not None and _generation(known) == _generation(obj):
            return
        self.changed.set()

    def objects(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._hooks.values())


def _generation(obj: dict[str, Any]) -> object:
    return (obj.get("metadata") or {}).get("generation")


class HookWatch:
    """List+watch of Hooks in one scope into a ``HookSet``."""

    def __init__(
        self, api_client: client.ApiClient, hooks: HookSet, *, namespace: str | None
    ) -> None:
        custom = client.CustomObjectsApi(api_client)
        self.namespace = namespace
        self.hooks = hooks
        self.resource_version = ""
        self._custom = custom
        self._watch: RawWatch | None = None

    def _list_fn(self) -> Callable[..., Any]:
        if self.namespace is None:
            return lambda **kw: self._custom.list_cluster_custom_object(
                GROUP, VERSION, PLURAL, **kw
            )
        ns = self.namespace
        return lambda **kw: self._custom.list_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, **kw
        )

    def relist(self) -> None:
        response = self._list_fn()(_preload_content=False)
        try:
            page = json.loads(response.data)
        finally:
            response.release_conn()
        items = [o for o in page.get("items") or [] if isinstance(o, dict)]
        self.hooks.replace(self.namespace, items)
        self.resource_version = str((page.get("metadata") or {}).get("resourceVersion") or "")

    def watch(self) -> None:
        """One watch call from ``resource_version``; a 410 clears it (the next step lists)."""
        self._watch = RawWatch()
        try:
            for line in self._watch.stream(
                self._list_fn(),
                resource_version=self.resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=WATCH_TIMEOUT_S,
            ):
                if line is None:  # undecodable
                    continue
                kind = line.get("type")
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    self.hooks.apply(kind, line["object"])
                self.resource_version = self._watch.resource_version or self.resource_version
        except (ApiException, WatchLineError) as exc:  # the call's, or an ERROR line's
            if exc.status != HTTP_GONE:
                raise
            self.resource_version = ""  # expired: list again

    def stop(self) -> None:
        if self._watch is not None:
            self._watch.stop()

    def run(self, stop: threading.Event, backoff: Backoff) -> None:
        while not stop.is_set():
            try:
                if not self.resource_version:
                    self.relist()
                self.watch()
                backoff.reset()
            except Exception as exc:  # the API server or the network: retry after a pause
                delay = backoff.next()
                logger.warning(
                    "hooks in %s: %s; retrying in %.1f s",
                    self.namespace or "all namespaces",
                    exc,
                    delay,
                )
                stop.wait(delay)


class HookPublisher:
    """Publishes the accepted Hooks whenever the set changed and settled."""

    def __init__(
        self,
        hooks: HookSet,
        store: ConfigStore,
        *,
        base_files: dict[str, str],
        clock: Callable[[], datetime],
        settle: float = SETTLE_S,
        judgements: Judgements | None = None,
    ) -> None:
        self.hooks = hooks
        self.judgements = judgements or Judgements()
        self.store = store
        self.base_files = base_files
        self.clock = clock
        self.settle = settle
        self.last: cluster.ClusterConfig | None = None
        self.version = 0

    def publish(self) -> None:
        """Validate every Hook alone and publish the accepted set (unless unchanged)."""
        objects = self.hooks.objects()
        accepted = cluster.accept(self.base_files, objects)
        for key, problems in accepted.rejected.items():
            logger.error(
                "Hook %s rejected (the others are kept):\n%s",
                key,
                "\n".join(f"  {p}" for p in problems),
            )
        published = publishing.publish_files(
            accepted.files,
            self.store,
            origin="cluster",
            label="cluster",
            now=self.clock(),
            check_sources=False,
        )
        self.last, self.version = accepted, published.version
        self.judgements.update(objects, accepted.rejected)
        if published.changed:
            logger.info(
                "configuration version %d published from the cluster: %d hooks (%d rejected)",
                published.version,
                len(accepted.accepted),
                len(accepted.rejected),
            )

    def run(self, stop: threading.Event, backoff: Backoff) -> None:
        while not stop.is_set():
            if not self.hooks.changed.wait(0.5):
                continue
            stop.wait(self.settle)
            self.hooks.changed.clear()
            try:
                self.publish()
                backoff.reset()
            except (TransientError, ConfigError) as exc:
                self.hooks.changed.set()  # try again
                delay = backoff.next()
                logger.warning("cluster hooks not published (%s); retrying in %.1f s", exc, delay)
                stop.wait(delay)


class HookSync:
    """The forwarder's part: one watch per scope and the publisher, as threads."""

    def __init__(
        self,
        api_client: client.ApiClient,
        settings: ForwarderSettings,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self.hooks = HookSet()
        scopes: list[str | None] = list(settings.namespaces) or [None]
        self.watches = [HookWatch(api_client, self.hooks, namespace=ns) for ns in scopes]
        project = settings.project or None
        self.store = open_config_store(settings.hooks_state, project=project)
        judgements = Judgements()
        self.publisher = HookPublisher(
            self.hooks,
            self.store,
            base_files=snapshot.files_of(settings.config_dir),
            clock=clock,
            judgements=judgements,
        )
        self.audit = open_store(settings.hooks_state, project=project)
        self.reporter = HookReporter(
            self.hooks.objects,
            judgements,
            self.audit,
            StatusWriter(client.CustomObjectsApi(api_client)),
            FiringEvents(client.CoreV1Api(api_client), monotonic=time.monotonic),
            clock=clock,
            interval=settings.status_interval_seconds,
            findings=FindingEvents(client.CoreV1Api(api_client), self.audit.record, clock=clock),
        )

    def start(
        self, stop: threading.Event, backoff: Callable[[], Backoff]
    ) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=w.run, args=(stop, backoff()), name="khook-hooks", daemon=True)
            for w in self.watches
        ]
        threads.append(
            threading.Thread(
                target=self.publisher.run,
                args=(stop, backoff()),
                name="khook-hooks-publish",
                daemon=True,
            )
        )
        threads.append(
            threading.Thread(
                target=self.reporter.run,
                args=(stop, backoff()),
                name="khook-hooks-status",
                daemon=True,
            )
        )
        for thread in threads:
            thread.start()
        return threads

    def stop(self) -> None:
        for watch in self.watches:
            watch.stop()
        self.store.close()
        self.audit.close()
