"""Incidents in the console API: ``/api/v1/incidents`` and its OpenAPI entry.

The incidents are conftest.py's ``bad_deploy``: a bad deploy of ``checkout`` (an alert, two
BackOffs, a follow-up the sweep sent) and an earlier ``cart`` incident gone quiet, written into
the scenario's store by real pipeline runs with the real A2A test agent.
"""

from __future__ import annotations

import pytest

from tests.integration.console.conftest import CART, BadDeploy
from tests.integration.console.test_console_api import call, conforms, get
from tests.support.functions import FunctionServer
from tests.support.incidents import CHECKOUT


def test_incidents_list_their_workload_members_runs_and_follow_ups(
    console: FunctionServer, bad_deploy: BadDeploy
):
    listed = get(console, "/api/v1/incidents")["incidents"]

    assert [i["workload"] for i in listed] == [CHECKOUT, CART]  # the newest first
    checkout, cart = listed
    assert (checkout["state"], checkout["close_reason"], checkout["closed_at"]) == (
        "open",
        None,
        None,
    )
    assert (checkout["events"], checkout["follow_ups"], checkout["pending"]) == (3, 1, 0)
    assert checkout["hook"] == "shop/checkout"
    members = {m["member"].split("/")[0]: m["state"] for m in checkout["members"]}
    assert members == {"alertmanager": "firing", "kubernetes": "event"}
    assert len(checkout["members"]) == 3
    [run] = checkout["runs"]
    assert (run["decision"], run["incident"], run["type"]) == (
        "opened:incident",
        checkout["id"],
        "kube-pod-crash-looping",
    )
    assert {run["task_id"], cart["runs"][0]["task_id"]} == set(bad_deploy.task_ids)
    assert (cart["state"], cart["close_reason"]) == ("closed", "quiet")
    assert cart["closed_at"] > cart["last_event_at"]
    assert cart["follow_ups"] == 0


def test_incidents_filter_by_open_and_workload(console: FunctionServer, bad_deploy: BadDeploy):
    only_open = get(console, "/api/v1/incidents", open="1")["incidents"]
    cart = get(console, "/api/v1/incidents", workload=CART)["incidents"]
    one = get(console, "/api/v1/incidents", limit="1")["incidents"]

    assert [i["id"] for i in only_open] == [bad_deploy.checkout]
    assert [i["id"] for i in cart] == [bad_deploy.cart]
    assert [i["id"] for i in one] == [bad_deploy.checkout]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"workload": "shop/checkout"}, "workload"),
        ({"open": "yes"}, "open"),
        ({"limit": "0"}, "limit"),
    ],
)
def test_bad_incident_queries_are_400_naming_the_parameter(
    console: FunctionServer, params: dict[str, str], field: str
):
    status, _, body = call(console, "/api/v1/incidents", params)
    assert (status, body["field"]) == (400, field)


def test_the_openapi_entry_describes_the_incidents_answer(
    console: FunctionServer, bad_deploy: BadDeploy
):
    document = get(console, "/api/v1/openapi.json")
    item = document["paths"]["/api/v1/incidents"]["get"]
    schema = item["responses"]["200"]["content"]["application/json"]["schema"]
    answer = get(console, "/api/v1/incidents")

    assert answer["incidents"]
    conforms(answer, schema, "/api/v1/incidents")
    assert {p["name"] for p in item["parameters"]} == {"open", "workload", "limit"}
