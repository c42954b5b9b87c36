"""Each Hook's status and Fired Events, written to a real kube-apiserver with the project's CRD.

The server decides what production would: the CRD's structural schema (a field it does not
declare is pruned), the status subresource, resourceVersion conflicts, RBAC and the printer
columns ``kubectl`` shows. Firings come from the audit trail in the shared store, where the
functions record them.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from khook_core.forwarder.backoff import Backoff
from khook_core.forwarder.hook_events import FiringEvents
from khook_core.forwarder.hook_report import HookReporter, Judgements
from khook_core.forwarder.hook_status import GROUP, PLURAL, VERSION, StatusWriter
from khook_core.forwarder.hook_sync import HookPublisher, HookSet, HookWatch
from khook_core.liveconfig import snapshot
from khook_core.state.base import DedupKey, Firing
from khook_core.state.config_sqlite import SqliteConfigStore
from khook_core.state.sqlite import SqliteStateStore
from tests.support.configdir import make_config, restart_hook
from tests.support.kube_real import RealKube, new_namespace
from tests.support.paths import REPO

PROJECT_CRD = REPO / "config" / "k8s" / "hooks.kagent.dev.crd.yaml"
COMPAT_CRD = REPO / "tests" / "data" / "compat" / "kagent.dev_hooks.crd.yaml"
COMPAT_EXAMPLES = REPO / "tests" / "data" / "compat" / "khook-examples"
COMPAT_GROUP = "compat.khook.test"
COMPAT_KIND = "CompatHook"
COMPAT_PLURAL = "compathooks"
"""khook's CRD unchanged but for its group and names, served beside the project's for comparison
(its own plural, so ``kubectl get hooks`` still means the project's)."""
WAIT_S = 90.0


def wait_for(check: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def hook(
    namespace: str, name: str, prompt: str = "Pod {{.ResourceName}} restarted"
) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Hook",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "eventConfigurations": [
                {"eventType": "pod-restart", "agentRef": {"name": "k8s-agent"}, "prompt": prompt}
            ]
        },
    }


def install_crd(api: Any, body: dict[str, Any]) -> None:
    """Create or replace ``body`` and wait until it is established."""
    ext: Any = client.ApiextensionsV1Api(api)  # plain JSON bodies, not the client's models
    name = body["metadata"]["name"]
    try:
        ext.create_custom_resource_definition(body)
    except ApiException as exc:
        if exc.status != 409:
            raise
        current = ext.read_custom_resource_definition(name)
        body = {
            **body,
            "metadata": {**body["metadata"], "resourceVersion": current.metadata.resource_version},
        }
        ext.replace_custom_resource_definition(name, body)

    def established() -> bool:
        status = ext.read_custom_resource_definition(name).status
        return any(
            c.type == "Established" and c.status == "True"
            for c in (status.conditions if status else None) or []
        )

    wait_for(established, f"CRD {name} established")


def crd_document(path: Path) -> dict[str, Any]:
    [doc] = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module")
def kube(real_kube: RealKube) -> RealKube:
    """The API server with the project's Hook CRD and, under another group, khook's own."""
    compat = crd_document(COMPAT_CRD)
    compat["metadata"]["name"] = f"{COMPAT_PLURAL}.{COMPAT_GROUP}"
    compat["spec"]["group"] = COMPAT_GROUP
    compat["spec"]["names"] = {
        "kind": COMPAT_KIND,
        "listKind": f"{COMPAT_KIND}List",
        "plural": COMPAT_PLURAL,
        "singular": COMPAT_KIND.lower(),
    }
    with real_kube.api_client() as api:
        install_crd(api, crd_document(PROJECT_CRD))
        install_crd(api, compat)
    return real_kube


@dataclass
class Reporting:
    namespace: str
    custom: client.CustomObjectsApi
    core: client.CoreV1Api
    audit: SqliteStateStore
    reporter: HookReporter

    def create(self, *bodies: dict[str, Any]) -> None:
        for body in bodies:
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, body
            )

    def status(self, name: str) -> dict[str, Any]:
        obj: Any = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name
        )
        return dict(obj.get("status") or {})

    def ready(self, name: str) -> dict[str, Any] | None:
        return next(
            (c for c in self.status(name).get("conditions") or [] if c.get("type") == "Ready"), None
        )

    def fired(self, name: str) -> list[dict[str, Any]]:
        reply: Any = self.core.list_namespaced_event(
            self.namespace,
            field_selector=f"involvedObject.name={name},reason=Fired",
            _preload_content=False,
        )
        items: list[dict[str, Any]] = json.loads(reply.data)["items"]
        return items


def firing(
    namespace: str,
    hook_name: str,
    outcome: str,
    *,
    at: datetime,
    pod: str = "web-1",
    task: str = "",
    error: str = "",
) -> Firing:
    return Firing(
        key=DedupKey(f"{namespace}/{hook_name}|pod-restart|{pod}"),
        hook=f"{namespace}/{hook_name}",
        event_id=f"ev-{pod}-{at.timestamp()}",
        event_type="pod-restart",
        source="kubernetes",
        resource=f"{namespace}/Pod/{pod}",
        agent=f"{namespace}/k8s-agent",
        prompt_hash="h",
        outcome=outcome,
        at=at,
        task_id=task,
        error=error,
    )


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def reporting(kube: RealKube, tmp_path: Path) -> Iterator[Reporting]:
    """A namespace with the forwarder's Hook watch, publisher and status reporter running
    (as the admin; the RBAC test runs the whole forwarder as its service account)."""
    namespace = new_namespace(kube, "status")
    api = kube.api_client()
    api.configuration.connection_pool_maxsize = 8
    base = snapshot.files_of(make_config(tmp_path, restart_hook()))
    config_store = SqliteConfigStore(tmp_path / "state.db")
    audit = SqliteStateStore(str(tmp_path / "state.db"))
    hooks = HookSet()
    judgements = Judgements()
    watch = HookWatch(api, hooks, namespace=namespace)
    publisher = HookPublisher(
        hooks, config_store, base_files=base, clock=now, settle=0.1, judgements=judgements
    )
    reporter = HookReporter(
        hooks.objects,
        judgements,
        audit,
        StatusWriter(client.CustomObjectsApi(api)),
        FiringEvents(client.CoreV1Api(api), monotonic=time.monotonic),
        clock=now,
        interval=0.2,
    )
    stop = threading.Event()
    threads = [
        threading.Thread(target=run, args=(stop, Backoff(0.1, 1.0)), daemon=True)
        for run in (watch.run, publisher.run, reporter.run)
    ]
    for thread in threads:
        thread.start()
    try:
        yield Reporting(
            namespace, client.CustomObjectsApi(api), client.CoreV1Api(api), audit, reporter
        )
    finally:
        stop.set()
        watch.stop()
        for thread in threads:
            thread.join(10)
        audit.close()
        config_store.close()
        api.close()


def test_an_invalid_hook_is_not_ready_naming_the_field_and_the_others_are_ready(
    reporting: Reporting,
):
    reporting.create(
        hook(reporting.namespace, "web"),
        hook(reporting.namespace, "broken", "Pod {{.Podname}} restarted"),
    )

    good = wait_for(lambda: reporting.ready("web"), "web's Ready condition")
    bad = wait_for(lambda: reporting.ready("broken"), "broken's Ready condition")

    assert (good["status"], good["reason"]) == ("True", "HookConfigured")
    assert (bad["status"], bad["reason"]) == ("False", "InvalidConfiguration")
    assert "prompt" in bad["message"]
    assert "{{.Podname}}" in bad["message"]
    assert bad["observedGeneration"] == 1
    assert "lastUpdated" in reporting.status("broken")

    # fixing it makes it Ready at its new generation
    fixed = hook(reporting.namespace, "broken")
    reporting.custom.patch_namespaced_custom_object(
        GROUP, VERSION, reporting.namespace, PLURAL, "broken", {"spec": fixed["spec"]}
    )
    ready = wait_for(
        lambda: (c := reporting.ready("broken")) and c["status"] == "True" and c,
        "the fixed Hook Ready",
    )
    assert (ready["reason"], ready["observedGeneration"]) == ("HookConfigured", 2)


def test_firings_in_the_audit_trail_become_active_events_and_fired_events(
    reporting: Reporting,
):
    ns = reporting.namespace
    reporting.create(hook(ns, "web"))
    wait_for(lambda: reporting.ready("web"), "web judged")
    # whole seconds (the status's precision), after the reporter started (Events are recorded
    # for firings after the forwarder's start)
    start = (now() + timedelta(seconds=1)).replace(microsecond=0)
    for record in (
        firing(ns, "web", "dispatched", at=start, task="task-1"),
        firing(ns, "web", "dispatched", at=start + timedelta(seconds=2), task="task-2"),
        firing(
            ns, "web", "dispatched", at=start + timedelta(seconds=1), pod="web-2", task="task-3"
        ),
        firing(ns, "web", "duplicate", at=start + timedelta(seconds=3), pod="web-3"),
    ):
        reporting.audit.record(record)

    active = wait_for(
        lambda: (
            len(reporting.status("web").get("activeEvents") or []) == 2
            and reporting.status("web")["activeEvents"]
        ),
        "two active events",
    )

    stamp = "%Y-%m-%dT%H:%M:%SZ"
    assert active == [  # newest first: the LAST FIRED column reads the first
        {
            "eventType": "pod-restart",
            "resourceName": "web-1",
            "status": "firing",
            "firstSeen": start.strftime(stamp),
            "lastSeen": (start + timedelta(seconds=2)).strftime(stamp),
        },
        {
            "eventType": "pod-restart",
            "resourceName": "web-2",
            "status": "firing",
            "firstSeen": (start + timedelta(seconds=1)).strftime(stamp),
            "lastSeen": (start + timedelta(seconds=1)).strftime(stamp),
        },
    ]
    events = wait_for(
        lambda: (
            sorted(e["count"] for e in reporting.fired("web")) == [1, 2] and reporting.fired("web")
        ),
        "one Fired Event per resource, counted",
    )
    by_pod = {e["message"].split(":")[0]: e for e in events}
    web1 = by_pod[f"pod-restart on {ns}/Pod/web-1"]
    assert web1["count"] == 2
    assert f"agent {ns}/k8s-agent" in web1["message"]
    assert "task task-2" in web1["message"]
    assert web1["involvedObject"]["kind"] == "Hook"
    assert web1["type"] == "Normal"

    # a later firing patches the same Event's count
    reporting.audit.record(
        firing(ns, "web", "dispatched", at=start + timedelta(seconds=4), task="task-4")
    )
    wait_for(
        lambda: any(e["count"] == 3 and "task-4" in e["message"] for e in reporting.fired("web")),
        "the count patched",
    )


def test_an_unreachable_agent_makes_the_hook_not_ready_until_a_call_succeeds(
    reporting: Reporting,
):
    ns = reporting.namespace
    reporting.create(hook(ns, "web"))
    wait_for(lambda: reporting.ready("web"), "web judged")
    start = now()
    reporting.audit.record(
        firing(ns, "web", "failed:transient", at=start, error="connection refused")
    )

    down = wait_for(
        lambda: (c := reporting.ready("web")) and c["status"] == "False" and c, "AgentUnreachable"
    )
    assert down["reason"] == "AgentUnreachable"
    assert f"{ns}/k8s-agent" in down["message"]
    assert "connection refused" in down["message"]

    reporting.audit.record(
        firing(ns, "web", "dispatched", at=start + timedelta(seconds=1), task="t")
    )
    up = wait_for(
        lambda: (c := reporting.ready("web")) and c["status"] == "True" and c, "Ready again"
    )
    assert up["reason"] == "HookConfigured"


class ChangedBetweenReadAndWrite:
    """The status writer's API, with someone else labelling the Hook right after its first
    read: the write that follows carries a resourceVersion the server no longer holds."""

    def __init__(self, api: client.CustomObjectsApi, other: client.CustomObjectsApi) -> None:
        self.api, self.other = api, other
        self.reads: list[str] = []

    def get_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Any:
        reply: Any = self.api.get_namespaced_custom_object(*args, **kwargs)
        data = reply.data
        reply.release_conn()
        self.reads.append(json.loads(data)["metadata"]["resourceVersion"])
        if len(self.reads) == 1:
            group, version, namespace, plural, name = args
            self.other.patch_namespaced_custom_object(
                group, version, namespace, plural, name, {"metadata": {"labels": {"x": "y"}}}
            )
        # the data was read already; hand back something readable
        return _Replayed(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.api, name)


@dataclass
class _Replayed:
    data: bytes

    def release_conn(self) -> None:
        pass


def test_a_conflicting_status_write_is_retried_from_a_fresh_object(kube: RealKube):
    namespace = new_namespace(kube, "conflict")
    with kube.api_client() as api:
        custom = client.CustomObjectsApi(api)
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, hook(namespace, "web")
        )
        api_ = ChangedBetweenReadAndWrite(custom, custom)
        writer = StatusWriter(api_)  # type: ignore[arg-type]
        seen: list[str] = []

        def desired(obj: Any) -> dict[str, Any]:
            seen.append(obj["metadata"]["resourceVersion"])
            return {
                "lastUpdated": "2026-01-01T00:00:00Z",
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "HookConfigured",
                        "message": "ok",
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                        "observedGeneration": 1,
                    }
                ],
            }

        assert writer.write(namespace, "web", desired)
        stored: Any = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "web")

    assert writer.conflicts == 1  # the server refused the first write: a real 409
    assert len(api_.reads) == 2
    assert api_.reads[0] != api_.reads[1]  # a fresh GET
    assert seen == api_.reads  # each attempt rendered from the object just read
    assert stored["metadata"]["labels"] == {"x": "y"}  # the other writer's change is kept
    assert stored["status"]["conditions"][0]["reason"] == "HookConfigured"


def test_a_thousand_hooks_are_all_reported_ready(reporting: Reporting):
    ns = reporting.namespace
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda i: reporting.create(hook(ns, f"h-{i:04d}")), range(1000)))

    def all_ready() -> bool:
        reply: Any = reporting.custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)
        return (
            sum(
                1
                for item in reply["items"]
                for c in (item.get("status") or {}).get("conditions") or []
                if c["type"] == "Ready" and c["status"] == "True"
            )
            == 1000
        )

    wait_for(all_ready, "1,000 Hooks Ready", timeout=240)


def test_kubectl_get_hooks_shows_ready_and_last_fired(reporting: Reporting, kube: RealKube):
    ns = reporting.namespace
    reporting.create(hook(ns, "web"), hook(ns, "broken", "Pod {{.Podname}}"))
    reporting.audit.record(firing(ns, "web", "dispatched", at=now(), task="t"))
    wait_for(lambda: reporting.status("web").get("activeEvents"), "web's active event")
    wait_for(lambda: reporting.ready("broken"), "broken judged")

    done = subprocess.run(
        ["kubectl", "--kubeconfig", str(kube.kubeconfig), "get", "hooks", "-A"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    header, *lines = done.stdout.splitlines()
    names = re.split(r"\s{2,}", header.strip())
    assert names == ["NAMESPACE", "NAME", "READY", "LAST FIRED", "AGE"]
    starts: list[int | None] = [m.start() for m in re.finditer(r"\S+(?: \S+)?", header)]
    starts.append(None)

    def cells(line: str) -> list[str]:
        return [line[a:b].strip() for a, b in itertools.pairwise(starts)]

    rows = {tuple(cells(line)[:2]): cells(line)[2:] for line in lines}
    ready, last_fired, _age = rows[(ns, "web")]
    assert ready == "True"
    assert re.fullmatch(r"\d+s", last_fired)  # an age: fired seconds ago
    ready, last_fired, _age = rows[(ns, "broken")]
    assert (ready, last_fired) == ("False", "")  # never fired


def compat_documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(COMPAT_EXAMPLES.glob("*.yaml")):
        docs += [
            d
            for d in yaml.safe_load_all(path.read_text())
            if isinstance(d, dict) and d.get("kind") == "Hook"
        ]
    return docs


def test_every_khook_hook_file_is_judged_the_same_by_the_project_crd(kube: RealKube):
    """What khook's CRD accepts (and how it prunes it) the project's CRD accepts the same."""
    namespace = new_namespace(kube, "compat")
    docs = compat_documents()
    assert docs
    accepted = 0
    with kube.api_client() as api:
        custom = client.CustomObjectsApi(api)

        def dry_run(group: str, doc: dict[str, Any]) -> dict[str, Any] | int:
            kind, plural = (
                (COMPAT_KIND, COMPAT_PLURAL) if group == COMPAT_GROUP else ("Hook", PLURAL)
            )
            body = {
                **doc,
                "apiVersion": f"{group}/{VERSION}",
                "kind": kind,
                "metadata": {**doc["metadata"], "namespace": namespace},
            }
            try:
                stored: Any = custom.create_namespaced_custom_object(
                    group, VERSION, namespace, plural, body, dry_run="All"
                )
            except ApiException as exc:
                return int(exc.status)
            spec: dict[str, Any] = dict(stored["spec"])
            return spec

        for doc in docs:
            under_khook = dry_run(COMPAT_GROUP, doc)
            assert dry_run(GROUP, doc) == under_khook, doc["metadata"]["name"]
            accepted += not isinstance(under_khook, int)
    assert accepted  # some examples are valid, and so the comparison means something


def test_the_manifests_rbac_lets_the_forwarder_report_status_and_nothing_more(
    kube: RealKube,
    tmp_path: Path,
):
    from khook_core.forwarder.app import Forwarder
    from khook_core.forwarder.config import ForwarderSettings
    from tests.integration.forwarder.test_forwarder_real_rbac import apply, manifests
    from tests.support.forwarder import TOPIC, RecordingClient

    namespace, elsewhere = new_namespace(kube, "rbac"), new_namespace(kube, "other")
    apply(kube, manifests("namespace.yaml") + manifests("serviceaccount.yaml"))
    apply(kube, manifests("rbac-namespaced.yaml", namespace))
    token = kube.forwarder_token()
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", token)
    state = tmp_path / "state.db"
    settings = ForwarderSettings(
        kubeconfig=str(kubeconfig),
        namespaces=namespace,
        port=0,
        host="127.0.0.1",
        topic=TOPIC,
        config_dir=make_config(tmp_path, restart_hook()),
        hooks_state=f"sqlite:{state}",
        status_interval_seconds=0.2,
        backoff_initial_seconds=0.05,
        backoff_max_seconds=0.5,
    )
    with kube.api_client() as admin:
        admin_custom = client.CustomObjectsApi(admin)
        for body in (
            hook(namespace, "web"),
            hook(namespace, "broken", "Pod {{.Podname}}"),
            hook(elsewhere, "web"),
        ):
            admin_custom.create_namespaced_custom_object(
                GROUP, VERSION, body["metadata"]["namespace"], PLURAL, body
            )
        audit = SqliteStateStore(str(state))
        forwarder = Forwarder(settings, publish_client=RecordingClient())
        forwarder.start()
        try:
            audit.record(firing(namespace, "web", "dispatched", at=now(), task="t-1"))

            def ready(name: str) -> str | None:
                obj: Any = admin_custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name
                )
                return next(
                    (
                        c["status"]
                        for c in (obj.get("status") or {}).get("conditions") or []
                        if c["type"] == "Ready"
                    ),
                    None,
                )

            wait_for(
                lambda: ready("web") == "True" and ready("broken") == "False",
                "the forwarder, as its service account, to write both statuses",
            )
            wait_for(
                lambda: fired_events(kube, namespace), "the Fired Event, as the service account"
            )
        finally:
            forwarder.stop(0)
            audit.close()

    with kube.api_client(token) as api:
        custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)

        def event(ns: str) -> Any:
            return {
                "metadata": {"name": "probe"},
                "reason": "Fired",
                "message": "m",
                "involvedObject": {"kind": "Hook", "name": "web", "namespace": ns},
                "type": "Normal",
            }

        refused: list[Callable[[], Any]] = [
            # the Hook itself: no spec or metadata changes, no create or delete
            lambda: custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, "web", {"metadata": {"labels": {"a": "b"}}}
            ),
            lambda: custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, hook(namespace, "new")
            ),
            lambda: custom.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, "web"
            ),
            # its status only by patch, and only in a namespace it is bound in
            lambda: custom.replace_namespaced_custom_object_status(
                GROUP, VERSION, namespace, PLURAL, "web", admin_read(kube, namespace, "web")
            ),
            lambda: custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                elsewhere,
                PLURAL,
                "web",
                {"status": {}},
                _content_type="application/merge-patch+json",
            ),
            # Events: no delete, no update, nothing outside its namespaces
            lambda: core.delete_namespaced_event(fired_events(kube, namespace)[0], namespace),
            lambda: core.create_namespaced_event(elsewhere, event(elsewhere)),
            lambda: core.delete_collection_namespaced_event(namespace),
        ]
        for attempt in refused:
            with pytest.raises(ApiException) as denied:
                attempt()
            assert denied.value.status == 403
        # and what it needs works as that user
        core.create_namespaced_event(namespace, event(namespace), _preload_content=False)
        core.patch_namespaced_event(
            "probe",
            namespace,
            {"count": 2},
            _content_type="application/merge-patch+json",
            _preload_content=False,
        )


def admin_read(kube: RealKube, namespace: str, name: str) -> dict[str, Any]:
    with kube.api_client() as api:
        obj: Any = client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name
        )
        return dict(obj)


def fired_events(kube: RealKube, namespace: str) -> list[str]:
    with kube.api_client() as api:
        reply: Any = client.CoreV1Api(api).list_namespaced_event(
            namespace, field_selector="reason=Fired", _preload_content=False
        )
        return [e["metadata"]["name"] for e in json.loads(reply.data)["items"]]
