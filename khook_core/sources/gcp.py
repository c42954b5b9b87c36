"""The ``gcp`` source: Google Cloud's own alerting, delivered through Pub/Sub.

One source and one function take both kinds of message, told apart by their shape:

- Cloud Monitoring incidents from a Pub/Sub notification channel → ``monitoring-incident``
  (``khook_core.sources.gcp_monitoring``);
- Cloud Build status messages from the ``cloud-builds`` topic → ``build-failed``
  (``khook_core.sources.gcp_build``).

Both are published inside the project, so one deployment with two push subscriptions (the
source topic for the notification channel, ``cloud-builds`` for Cloud Build) covers them.
"""

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel

from khook_core.event import Event
from khook_core.sources import gcp_build, gcp_monitoring
from khook_core.sources.base import SourceContext, pubsub_ref
from khook_core.sources.fieldmap import schema_error
from khook_core.sources.jsonwords import json_type


class GcpSource:
    """Normalises Cloud Monitoring incidents and Cloud Build status messages."""

    name: ClassVar[str] = "gcp"
    version: ClassVar[str] = "1.0.0"
    event_types: ClassVar[tuple[str, ...]] = (gcp_monitoring.EVENT_TYPE, gcp_build.EVENT_TYPE)
    config_model: ClassVar[type[BaseModel] | None] = None

    def __init__(self, config: BaseModel | None, context: SourceContext) -> None:
        self.context = context

    def normalize(self, raw: Any, attributes: Mapping[str, str]) -> list[Event]:
        if not isinstance(raw, dict):
            raise schema_error(
                "(body): expected an object (a Cloud Monitoring incident or a "
                f"Cloud Build resource), got {json_type(raw)}",
                "(body)",
            )
        body = raw
        ref = pubsub_ref(attributes)
        if gcp_monitoring.looks_like(body):
            return [
                gcp_monitoring.normalize(
                    body, source=self.name, now=self.context.clock(), raw_ref=ref
                )
            ]
        if gcp_build.looks_like(body, attributes):
            return [
                gcp_build.normalize(
                    body, attributes, source=self.name, now=self.context.clock(), raw_ref=ref
                )
            ]
        raise schema_error(
            "(body): neither a Cloud Monitoring incident (no 'incident') nor a "
            "Cloud Build message (no buildId attribute)",
            "(body)",
        )
