"""The in-cluster forwarder, run locally against the current kubeconfig cluster when there is one.

It publishes with google-cloud-pubsub, which only the emulator understands (the in-process bus
speaks REST alone), so it runs only beside the emulator. Whether the cluster is usable is asked
with one list of Events (``limit=1``) and a short timeout, so a laptop without a cluster starts
at once and a cluster that refuses to show Events is reported instead of a failing forwarder.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from khook_core.localstack.processes import Child

PROBE_TIMEOUT_S: Final = 3.0
MARKER: Final = "khook_core.forwarder"


def reachable_cluster(timeout: float = PROBE_TIMEOUT_S) -> tuple[str | None, str]:
    """The current kubeconfig context if its API server answers, else None and why not."""
    try:
        from kubernetes import client, config
    except ImportError:
        return None, "the kubernetes client is not installed (pip install '.[forwarder]')"
    try:
        _, active = config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
        api = config.new_client_from_config()  # type: ignore[no-untyped-call]
    except Exception as exc:  # the client raises ConfigException, OSError, TypeError, ...
        return None, f"no Kubernetes cluster in the kubeconfig ({_first_line(exc)})"
    context = str((active or {}).get("name") or "current context")
    try:  # what the forwarder will do first, so a 403 on Events counts as unusable
        client.EventsV1Api(api).list_event_for_all_namespaces(limit=1, _request_timeout=timeout)
    except Exception as exc:  # urllib3 errors, ApiException (401/403), timeouts
        return None, f"cluster {context} is not reachable ({_first_line(exc)})"
    finally:
        api.close()
    return context, ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def start_forwarder(context: str, *, emulator_host: str, project: str, topic: str,
                    config_dir: Path, port: int, log_dir: Path, env: Mapping[str, str],
                    cwd: Path) -> Child:
    """``khook-forwarder`` publishing the cluster's Events to the emulator's ``topic``."""
    child_env = {**env, "PUBSUB_EMULATOR_HOST": emulator_host, "GOOGLE_CLOUD_PROJECT": project,
                 "KHOOK_TOPIC": topic, "KHOOK_CLUSTER": context,
                 "KHOOK_CONFIG_DIR": str(config_dir), "KHOOK_FORWARDER_HOST": "127.0.0.1",
                 "KHOOK_FORWARDER_PORT": str(port), "KHOOK_FORWARDER_LOG_FORMAT": "text"}
    child = Child("forwarder", [sys.executable, "-m", MARKER], log_dir / "forwarder.log")
    return child.start(child_env, cwd)
