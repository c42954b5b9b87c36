"""Cloud Build status messages from the ``cloud-builds`` topic.

Cloud Build publishes the whole Build resource as the message data, with the ``buildId`` and
``status`` attributes, at every status change. ``FAILURE``, ``TIMEOUT`` and ``INTERNAL_ERROR``
become ``build-failed`` events naming the trigger, repository, commit and log URL; every other
status is dropped with its name as the reason (``dropped:build-working``, ``build-success``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from khook_core.event import Event
from khook_core.sources.base import Dropped
from khook_core.sources.fieldmap import (
    object_field,
    scalar_text,
    schema_error,
    to_event,
    validate_generic,
)

EVENT_TYPE: Final = "build-failed"
FAILED: Final = ("FAILURE", "TIMEOUT", "INTERNAL_ERROR")
KNOWN: Final = (
    *FAILED,
    "STATUS_UNKNOWN",
    "PENDING",
    "QUEUED",
    "WORKING",
    "SUCCESS",
    "CANCELLED",
    "EXPIRED",
)


def normalize(
    body: Mapping[str, Any],
    attributes: Mapping[str, str],
    *,
    source: str,
    now: datetime,
    raw_ref: str,
) -> Event:
    """One Build resource → a ``build-failed`` event, or ``Dropped`` for other statuses."""
    build_id = scalar_text(body, "id", "id") or attributes.get("buildId", "")
    if not build_id:
        raise schema_error("id: required (the build id)", "id")
    status = scalar_text(body, "status", "status") or attributes.get("status", "")
    if status not in KNOWN:
        raise schema_error(
            f"status: {status or '(missing)'!r} is not a Cloud Build status", "status"
        )
    if status not in FAILED:
        raise Dropped("build-" + status.lower().replace("_", "-"))
    subs = {
        str(k): str(v)
        for k, v in object_field(body.get("substitutions"), "substitutions").items()
        if isinstance(v, str)
    }
    repo_source = object_field(
        object_field(body.get("source"), "source").get("repoSource"), "source.repoSource"
    )
    resolved = object_field(
        object_field(body.get("sourceProvenance"), "sourceProvenance").get("resolvedRepoSource"),
        "sourceProvenance.resolvedRepoSource",
    )
    repository = (
        subs.get("REPO_FULL_NAME")
        or subs.get("REPO_NAME")
        or scalar_text(repo_source, "repoName", "source.repoSource.repoName")
    )
    commit = subs.get("COMMIT_SHA") or scalar_text(
        resolved, "commitSha", "sourceProvenance.resolvedRepoSource.commitSha"
    )
    branch = subs.get("BRANCH_NAME") or scalar_text(
        repo_source, "branchName", "source.repoSource.branchName"
    )
    trigger_id = scalar_text(body, "buildTriggerId", "buildTriggerId")
    trigger = subs.get("TRIGGER_NAME") or trigger_id
    log_url = scalar_text(body, "logUrl", "logUrl")
    failure = object_field(body.get("failureInfo"), "failureInfo")
    detail = scalar_text(failure, "detail", "failureInfo.detail") or scalar_text(
        body, "statusDetail", "statusDetail"
    )
    what = f"Cloud Build {build_id[:8]}"
    if trigger:
        what += f" of trigger {trigger}"
    message = (
        f"{what} for {repository or '?'} {branch or ''} at {commit[:12] or '?'} ended {status}"
    ).replace("  ", " ")
    if detail:
        message += f": {detail}"
    tags = {
        "repository": repository,
        "branch": branch,
        "trigger": trigger,
        "status": status,
        "commit": commit[:12],
        "project": scalar_text(body, "projectId", "projectId"),
    }
    generic = validate_generic(
        {
            "type": EVENT_TYPE,
            "severity": "error",
            "reason": "Build" + status.title().replace("_", ""),
            "resource": {
                "kind": "CloudBuildTrigger" if trigger else "CloudBuild",
                "name": (trigger or build_id)[:253],
            },
            "message": message,
            "timestamp": body.get("finishTime") or None,
            "firstTimestamp": body.get("startTime") or body.get("createTime") or None,
            "id": f"{build_id}/{status}",
            "groupKey": f"{repository}/{branch}".strip("/"),
            "tags": {k: v for k, v in tags.items() if v},
            "metadata": {
                "build_id": build_id,
                "log_url": log_url,
                "commit_sha": commit,
                "trigger_id": trigger_id,
                "failure_type": scalar_text(failure, "type", "failureInfo.type"),
                "status_detail": detail,
            },
        }
    )
    return to_event(
        generic, source=source, now=now, raw_ref=raw_ref, id_parts=("build", build_id, status)
    )


def looks_like(body: Any, attributes: Mapping[str, str]) -> bool:
    return "buildId" in attributes or (
        isinstance(body, dict)
        and "status" in body
        and ("logUrl" in body or "buildTriggerId" in body)
    )
