"""The in-cluster forwarder, run locally against the current kubeconfig cluster when there is one.

The stack starts it only beside the Pub/Sub emulator (never against the in-process bus).
Whether the cluster is usable is asked with one list (``limit=1``, a short timeout) of exactly
what the forwarder will watch: the API of ``KHOOK_FORWARDER_API`` and, with
``KHOOK_FORWARDER_NAMESPACES`` set, each of those namespaces, so a forwarder with namespaced
RBAC is started and a laptop without a cluster starts at once. A cluster that refuses to show
those Events is reported instead of a failing forwarder.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from khook_local.processes import Child

PROBE_TIMEOUT_S: Final = 3.0
MARKER: Final = "khook_core.forwarder"


def watched_events(env: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    """The Events API and namespaces the forwarder will watch, read as it reads them."""
    from khook_core.forwarder.config import ForwarderSettings

    names = ("KHOOK_FORWARDER_API", "KHOOK_FORWARDER_NAMESPACES")
    settings = ForwarderSettings.model_validate(
        {name: env[name] for name in names if env.get(name)}
    )
    return settings.api, settings.namespaces


def reachable_cluster(
    timeout: float = PROBE_TIMEOUT_S, env: Mapping[str, str] | None = None
) -> tuple[str | None, str]:
    """The current kubeconfig context if its API server shows the Events the forwarder will
    watch (``env`` holds the forwarder's settings; default: this process's), else None and why.
    """
    try:
        from kubernetes import client, config
    except ImportError:
        return None, "the kubernetes client is not installed (pip install '.[forwarder]')"
    env = os.environ if env is None else env
    try:
        api_name, namespaces = watched_events(env)
    except ValueError as exc:  # pydantic's ValidationError is one
        return None, f"invalid forwarder settings ({_first_line(exc)})"
    kubeconfig = env.get("KUBECONFIG") or None  # the forwarder reads the same variable
    try:
        _, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=kubeconfig
        )
        api = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig
        )
    except Exception as exc:  # the client raises ConfigException, OSError, TypeError, ...
        return None, f"no Kubernetes cluster in the kubeconfig ({_first_line(exc)})"
    context = str((active or {}).get("name") or "current context")
    events: Any = client.CoreV1Api(api) if api_name == "v1" else client.EventsV1Api(api)
    # Raw replies, as the forwarder reads them: the client's models refuse real Events (an
    # events.k8s.io/v1 Event written through core/v1 has no eventTime).
    options = {"limit": 1, "_request_timeout": timeout, "_preload_content": False}
    try:  # what the forwarder will do first, so a 403 on those Events counts as unusable
        calls = [functools.partial(events.list_namespaced_event, ns) for ns in namespaces]
        for call in calls or [events.list_event_for_all_namespaces]:
            call(**options).release_conn()
    except Exception as exc:  # urllib3 errors, ApiException (401/403), timeouts
        where = f"namespaces {', '.join(namespaces)}" if namespaces else "all namespaces"
        return (
            None,
            f"cluster {context} is not reachable for {api_name} events in {where} "
            f"({_first_line(exc)})",
        )
    finally:
        api.close()
    return context, ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def start_forwarder(
    context: str,
    *,
    emulator_host: str,
    project: str,
    topic: str,
    config_dir: Path,
    port: int,
    log_dir: Path,
    env: Mapping[str, str],
    cwd: Path,
) -> Child:
    """``khook-forwarder`` publishing the cluster's Events to the emulator's ``topic``."""
    child_env = {
        **env,
        "PUBSUB_EMULATOR_HOST": emulator_host,
        "GOOGLE_CLOUD_PROJECT": project,
        "KHOOK_TOPIC": topic,
        "KHOOK_CLUSTER": context,
        "KHOOK_CONFIG_DIR": str(config_dir),
        "KHOOK_FORWARDER_HOST": "127.0.0.1",
        "KHOOK_FORWARDER_PORT": str(port),
        "KHOOK_FORWARDER_LOG_FORMAT": "text",
    }
    child = Child("forwarder", [sys.executable, "-m", MARKER], log_dir / "forwarder.log")
    return child.start(child_env, cwd)
