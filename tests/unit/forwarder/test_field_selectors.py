"""Field selectors fitted to the watched Events API at start-up, and the server's reason kept."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from khook_core.forwarder.config import CORE_API, EVENTS_API, ForwarderSettings
from khook_core.forwarder.field_selectors import fit_field_selector
from khook_core.forwarder.kube_http import ApiException
from khook_core.forwarder.watching import server_reason


@pytest.mark.parametrize(
    ("selector", "api", "fitted"),
    [
        ("involvedObject.kind=Node,type!=Normal", EVENTS_API, "regarding.kind=Node,type!=Normal"),
        ("regarding.name==web-0", CORE_API, "involvedObject.name==web-0"),
        ("reportingComponent=kubelet", EVENTS_API, "reportingController=kubelet"),
        ("reportingController=kubelet", CORE_API, "reportingComponent=kubelet"),
        ("source=kubelet,reason=BackOff", CORE_API, "source=kubelet,reason=BackOff"),
        (r"metadata.name=a\,b", EVENTS_API, r"metadata.name=a\,b"),
        ("spec.nodeName=n1", EVENTS_API, "spec.nodeName=n1"),  # unknown: the server decides
    ],
)
def test_fields_with_an_equivalent_are_renamed_for_the_watched_api(
    selector: str,
    api: str,
    fitted: str,
):
    assert fit_field_selector(selector, api) == fitted


def test_a_field_without_an_equivalent_is_refused_at_start_up_with_the_reason():
    with pytest.raises(ValidationError, match="cannot be selected by source"):
        ForwarderSettings(field_selector="source=kubelet")
    with pytest.raises(ValidationError, match="not field=value"):
        ForwarderSettings(field_selector="type")


def test_settings_carry_the_fitted_selector():
    assert ForwarderSettings(api="v1", field_selector="regarding.kind=Pod").field_selector == (
        "involvedObject.kind=Pod"
    )


def test_the_servers_reason_is_its_status_message():
    refused = ApiException(status=400, reason="Bad Request")
    refused.body = '{"kind":"Status","message":"field label not supported: spec.nodeName"}'
    assert server_reason(refused) == "HTTP 400: field label not supported: spec.nodeName"
    assert server_reason(ApiException(status=503, reason="Service Unavailable")) == (
        "HTTP 503 Service Unavailable"
    )
