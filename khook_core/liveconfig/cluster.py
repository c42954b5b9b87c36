"""Hooks from the cluster: each ``hooks.kagent.dev`` object validated alone, the accepted set
made into a configuration snapshot.

The forwarder hands over the Hook objects it lists and watches. Each is written as the YAML
document a file would hold and loaded with the same loader and event catalog as the files
(``load_hooks``), on its own, so an invalid Hook is rejected with its problems (each naming
the field) while every other one is kept. The snapshot is the forwarder's mapping table,
``plugins.yaml`` and ``budgets.yaml`` plus one file per accepted Hook under
``hooks/cluster/<namespace>/<name>.yaml``; a Hook deleted from the cluster is simply absent
from the next snapshot.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from khook_core import runtime
from khook_core.catalog import EventCatalog
from khook_core.errors import ConfigError, Problem
from khook_core.hooks import load_hooks
from khook_core.liveconfig import snapshot

CLUSTER_HOOKS: Final = f"{runtime.HOOKS_DIR}/cluster"
"""Where a snapshot keeps the cluster's Hooks, one file each."""


@dataclass(frozen=True)
class ClusterConfig:
    """The snapshot's files and what became of each Hook (by ``namespace/name``)."""

    files: dict[str, str]
    accepted: list[str] = field(default_factory=list)
    rejected: dict[str, list[Problem]] = field(default_factory=dict)


def key_of(obj: Mapping[str, Any]) -> str:
    """``namespace/name`` of a Hook object as the API returns it."""
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or 'default'}/{meta.get('name') or ''}"


def document_of(obj: Mapping[str, Any]) -> str:
    """The Hook as a file would hold it: the server's bookkeeping (uid, resourceVersion,
    managedFields, status) left out, so the snapshot changes only when the Hook does."""
    meta = obj.get("metadata") or {}
    doc = {
        "apiVersion": obj.get("apiVersion", "kagent.dev/v1alpha2"),
        "kind": obj.get("kind", "Hook"),
        "metadata": {"name": meta.get("name", ""), "namespace": meta.get("namespace", "")},
        "spec": obj.get("spec") or {},
    }
    return yaml.safe_dump(doc, sort_keys=True, allow_unicode=True)


def accept(
    base_files: Mapping[str, str],
    hooks: Iterable[Mapping[str, Any]],
    *,
    disabled_sources: frozenset[str] = frozenset(),
) -> ClusterConfig:
    """Validate each Hook alone against the base configuration; keep the valid ones.

    Args:
        base_files: the config directory's files (``snapshot.files_of``); its own hooks are
            left out: in cluster mode the cluster holds the hooks.
        hooks: Hook objects as listed from the API server.

    Raises:
        ConfigError: the base configuration itself is invalid (nothing can be published).
    """
    base = {k: v for k, v in base_files.items() if not k.startswith(f"{runtime.HOOKS_DIR}/")}
    config = snapshot.load_files(
        base, label="config", version="", disabled_sources=disabled_sources
    )
    catalog = EventCatalog.from_pairs(config.mapping.entries, config.sources.installed_names())
    files = dict(base)
    accepted: list[str] = []
    rejected: dict[str, list[Problem]] = {}
    with tempfile.TemporaryDirectory(prefix="khook-hooks-") as tmp:
        for obj in sorted(hooks, key=key_of):
            key = key_of(obj)
            text = document_of(obj)
            path = Path(tmp) / f"{len(accepted) + len(rejected)}.yaml"
            path.write_text(text, encoding="utf-8")
            try:
                load_hooks([path], catalog)
            except ConfigError as exc:
                rejected[key] = [Problem(f"Hook {key}", None, p.message) for p in exc.problems]
                continue
            accepted.append(key)
            files[f"{CLUSTER_HOOKS}/{key}.yaml"] = text
    return ClusterConfig(files, accepted, rejected)
