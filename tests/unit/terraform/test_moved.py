"""terraform/moved.tf: an existing deployment keeps its objects across the for_each refactor.

The addresses are checked against the configuration and the function catalogue; then Terraform
itself plans the moves on a stand-in state (``terraform_data`` in place of each google type, so
no provider is needed) and must find nothing to create or destroy.
"""

from __future__ import annotations

import re
import shutil
from collections import defaultdict
from pathlib import Path

from tests.support.terraform import TerraformConfig, run_terraform

FUNCTION = "google_cloudfunctions2_function"
INVOKER_TYPES = (
    "google_cloud_run_v2_service_iam_member",
    "google_cloudfunctions2_function_iam_member",
)
ADDRESS = re.compile(r'\$\{(\w+)\.(\w+)(?:\[(?:"([^"]*)"|(\d+))\])?\}')


def parse(address: str) -> tuple[str, str, str | int | None]:
    """``${type.name["key"]}`` -> (type, name, key); [0] gives 0, no index gives None."""
    match = ADDRESS.fullmatch(address)
    assert match, f"not a resource address: {address}"
    type_name, name, key, index = match.groups()
    return type_name, name, key if key is not None else (int(index) if index else None)


def moves(tf: TerraformConfig) -> list[tuple[tuple[str, str, str | int | None], ...]]:
    return [(parse(m["from"]), parse(m["to"])) for m in tf.moved]


def test_moves_lead_from_removed_resources_to_existing_ones(tf: TerraformConfig) -> None:
    assert tf.moved, "terraform/moved.tf has no moved blocks"
    for (from_type, from_name, _), (to_type, to_name, _) in moves(tf):
        assert from_type == to_type, "a move keeps the resource type"
        assert from_name not in tf.of_type(from_type), f"{from_type}.{from_name} still exists"
        assert to_name in tf.of_type(to_type), f"{to_type}.{to_name} does not exist"


ADDED_AFTER_THE_MOVE = frozenset({"console", "tasks"})
"""Functions that never existed under the old resource names: nothing of theirs to move."""


def test_every_function_and_its_grants_move(tf: TerraformConfig) -> None:
    found = {(f, t) for f, t in moves(tf)}
    for name, spec in tf.locals["functions"].items():
        if name in ADDED_AFTER_THE_MOVE:
            continue
        old = "pubsub" if spec["trigger"] == "pubsub" else "http"
        assert ((FUNCTION, old, name), (FUNCTION, "this", name)) in found, name
        for type_name in INVOKER_TYPES:
            if spec["trigger"] == "pubsub":
                pusher = ((type_name, "pusher", name), (type_name, "invoker", f"{name}/pusher"))
                assert pusher in found, f"{type_name}.pusher[{name!r}]"
        if spec["trigger"] == "http":
            public = ((INVOKER_TYPES[0], "public", name), (INVOKER_TYPES[0], "invoker"))
            assert (public[0], (*public[1], f"{name}/allUsers")) in found, name
    for type_name in INVOKER_TYPES:
        whole = ((type_name, "http_invoker", None), (type_name, "invoker", None))
        assert whole in found, f"{type_name}.http_invoker keeps its keys in invoker"
    subscription = "google_pubsub_subscription"
    assert ((subscription, "cloud_builds_push", 0), (subscription, "push", "gcp-cloud-builds")) in (
        found
    )


def hcl_key(key: str | int | None) -> str:
    return "" if key is None else f"[{key}]" if isinstance(key, int) else f'["{key}"]'


def stand_in(type_name: str, name: str) -> str:
    return f"{type_name.removeprefix('google_')}__{name}"


def stand_in_config(instances: dict[tuple[str, str], set[str | int]]) -> str:
    blocks = []
    for (type_name, name), keys in sorted(instances.items()):
        if keys == {0}:
            meta = "count = 1"
        else:
            meta = "for_each = toset([" + ", ".join(f'"{k}"' for k in sorted(map(str, keys))) + "])"
        blocks.append(f'resource "terraform_data" "{stand_in(type_name, name)}" {{\n  {meta}\n}}\n')
    return "\n".join(blocks)


def test_terraform_plans_only_moves_on_an_existing_state(
    tf: TerraformConfig, tmp_path: Path
) -> None:
    # An existing deployment: every source instance, and an HTTP invoker for each HTTP function.
    old: dict[tuple[str, str], set[str | int]] = defaultdict(set)
    new: dict[tuple[str, str], set[str | int]] = defaultdict(set)
    http = [n for n, spec in tf.locals["functions"].items() if spec["trigger"] == "http"]
    moved_blocks = []
    for (from_type, from_name, from_key), (to_type, to_name, to_key) in moves(tf):
        if from_key is None:  # the whole resource: its keys stay as they are
            keys: list[str | int] = [
                f"{n}/serviceAccount:caller@p.iam.gserviceaccount.com" for n in http
            ]
            old[(from_type, from_name)].update(keys)
            new[(to_type, to_name)].update(keys)
        else:
            assert to_key is not None
            old[(from_type, from_name)].add(from_key)
            new[(to_type, to_name)].add(to_key)
        moved_blocks.append(
            "moved {\n"
            f"  from = terraform_data.{stand_in(from_type, from_name)}{hcl_key(from_key)}\n"
            f"  to   = terraform_data.{stand_in(to_type, to_name)}{hcl_key(to_key)}\n"
            "}\n"
        )
    before, after = tmp_path / "before", tmp_path / "after"
    before.mkdir()
    after.mkdir()
    (before / "main.tf").write_text(stand_in_config(old))
    run_terraform(before, "init", "-input=false")
    run_terraform(before, "apply", "-auto-approve", "-input=false")
    shutil.copy(before / "terraform.tfstate", after / "terraform.tfstate")
    (after / "main.tf").write_text(stand_in_config(new) + "\n" + "\n".join(moved_blocks))
    run_terraform(after, "init", "-input=false")
    plan = run_terraform(after, "plan", "-input=false", "-no-color")
    assert "Plan: 0 to add, 0 to change, 0 to destroy." in plan, plan
    assert plan.count(" has moved to ") == sum(len(keys) for keys in old.values()), plan
