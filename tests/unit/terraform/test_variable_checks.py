"""The variable checks of terraform/validation.tf, evaluated by Terraform itself.

validation.tf holds only variables' checks as locals, so ``terraform console`` evaluates it with
variables.tf and no provider: the patterns run as RE2, the ranges and rules as Terraform
computes them. The precondition that turns the problems into a failed plan is checked as text.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support.terraform import TERRAFORM, TerraformConfig, first, run_terraform

REQUIRED = {"project_id": "my-project", "kagent_api_url": "https://kagent.example.com"}
CHECK_TABLES = ("setting_patterns", "setting_ranges", "setting_rules")
# Rules that relate two variables are named for the relation, not for one variable.
RELATIONS = {"instance_range", "vpc_connector_region"}


def setting_problems(
    tmp_path: Path, values: dict[str, object], var_file: Path | None = None
) -> list[str]:
    """local.setting_problems for ``values`` (HCL given as JSON) over the defaults."""
    work = tmp_path / "checks"
    work.mkdir(exist_ok=True)
    for name in ("variables.tf", "validation.tf"):
        shutil.copy(TERRAFORM / name, work / name)
    args = ["console"]
    if var_file is not None:
        args.append(f"-var-file={var_file}")
    for name, value in {**REQUIRED, **values}.items():
        args.append(f"-var={name}={value if isinstance(value, str) else json.dumps(value)}")
    output = run_terraform(work, *args, stdin="jsonencode(local.setting_problems)\n")
    problems = json.loads(json.loads(output))
    assert isinstance(problems, list)
    return [str(p) for p in problems]


def test_defaults_and_the_example_tfvars_pass(tmp_path: Path) -> None:
    assert setting_problems(tmp_path, {}) == []
    example = TERRAFORM / "terraform.tfvars.example"
    assert setting_problems(tmp_path, {}, var_file=example) == []


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"project_id": "My Project"}, "project_id must be a project id"),
        ({"region": "europe"}, "region must be a Google Cloud region"),
        ({"name_prefix": "khook-"}, "name_prefix must be 3-14 characters"),
        ({"labels": {"Team": "a"}}, "Label keys must start with a lowercase letter"),
        ({"sources": ["kubernetes", "sweep"]}, "sources must be a non-empty subset"),
        ({"sources": []}, "sources must be a non-empty subset"),
        ({"source_archive_dir": " "}, "source_archive_dir must be a non-empty path"),
        (
            {"min_instances": 101, "max_instances": 200},
            "min_instances must be a whole number from 0 to 100",
        ),
        ({"max_instances": 0}, "max_instances must be a whole number from 1 to 1000"),
        ({"max_request_concurrency": 1.5}, "max_request_concurrency must be a whole number"),
        ({"dedup_window_seconds": 604801}, "dedup_window_seconds must be a whole number"),
        ({"function_memory": "512MB"}, "function_memory must look like"),
        ({"function_cpu": "0"}, "function_cpu must be a number of vCPUs"),
        ({"function_cpu": "lots"}, "function_cpu must be a number of vCPUs"),
        ({"kagent_api_url": "kagent:8083"}, "kagent_api_url must be an http:// or https:// URL"),
        (
            {"kagent_api_url": "http://kagent-controller.kagent.svc.cluster.local:8083"},
            "kagent_api_url names a cluster-internal Service",
        ),
        ({"kagent_user_id": " "}, "kagent_user_id must be a non-empty string"),
        (
            {"vpc_connector": "projects/My-project/locations/europe-west1/connectors/khook"},
            "vpc_connector must be null or projects/",
        ),
        (
            {"vpc_connector": "projects/my-project/locations/us-central1/connectors/khook"},
            "vpc_connector must be in the functions' region europe-west1",
        ),
        ({"vpc_egress": "NONE"}, "vpc_egress must be PRIVATE_RANGES_ONLY or ALL_TRAFFIC"),
        ({"secrets": {"KHOOK_WEBHOOK_TOKEN": "short"}}, "secrets keys must be"),
        ({"secrets": {"KHOOK_OTHER": "x" * 20}}, "secrets keys must be"),
        ({"http_invokers": ["allUsers"]}, "http_invokers entries must be IAM members"),
        ({"topic_retention": "1d"}, "topic_retention must be seconds with an s suffix"),
        ({"topic_retention": "599s"}, "topic_retention must be seconds with an s suffix"),
        ({"dead_letter_retention": "2678401s"}, "dead_letter_retention must be seconds"),
        ({"max_delivery_attempts": 4}, "max_delivery_attempts must be a whole number from 5"),
        ({"topic_publishers": {"webhook": []}}, "topic_publishers keys must be"),
        ({"topic_publishers": {"kafka": ["someone"]}}, "topic_publishers values must be IAM"),
        ({"sweep_schedule": "* * * *"}, "sweep_schedule must be a 5-field cron expression"),
        ({"sweep_time_zone": "UTC+1"}, "sweep_time_zone must be a tz database name"),
        ({"firestore_location": "EUR3"}, "firestore_location must be a Firestore location id"),
        ({"forwarder_namespace": "Khook"}, "forwarder_namespace must be a Kubernetes namespace"),
        ({"forwarder_service_account": "-sa"}, "forwarder_service_account must be a Kubernetes"),
        ({"workload_identity_pool": "p.svc"}, "workload_identity_pool must look like"),
        ({"min_instances": 5, "max_instances": 2}, "min_instances (5) must not exceed"),
        ({"telemetry": "console"}, 'telemetry must be "off" or "gcp"'),
        ({"alert_failure_ratio": 1}, "alert_failure_ratio must be between"),
        ({"alert_silence_seconds": 60}, "alert_silence_seconds must be"),
        ({"alert_channels": ["pager"]}, "alert_channels entries must"),
    ],
)
def test_each_bad_value_is_reported(
    tmp_path: Path, values: dict[str, object], problem: str
) -> None:
    problems = setting_problems(tmp_path, values)
    assert len(problems) == 1, problems
    assert problems[0].startswith(problem), problems


def test_optional_settings_pass_when_unset_or_empty(tmp_path: Path) -> None:
    assert setting_problems(tmp_path, {"sweep_schedule": "", "labels": {}}) == []


def test_every_check_names_a_variable(tf: TerraformConfig) -> None:
    for table in CHECK_TABLES:
        for name in tf.locals[table]:
            assert name in tf.variables or name in RELATIONS, f"local.{table}.{name}"
    checked = {name for table in CHECK_TABLES for name in tf.locals[table]}
    free = {"alertmanager_public", "grant_pubsub_token_creator", "create_firestore_database"}
    free |= {"firestore_trim_audit", "create_cloud_builds_topic", "monitoring_notification_channel"}
    free |= {"task_push_notifications"}
    free |= {"forwarder_cluster_hooks"}
    assert set(tf.variables) - checked == free, "every variable but the booleans is checked"
    assert not any("validation" in v for v in tf.variables.values()), "checks live in one place"


def test_every_secret_a_function_reads_may_be_given(tf: TerraformConfig) -> None:
    """A secret a function is wired to read but ``var.secrets`` refuses could never be set."""
    read = {s for spec in tf.locals["functions"].values() for s in spec.get("secrets", [])}
    assert read, "the functions read secrets"
    assert read <= set(tf.locals["secret_names"]), read - set(tf.locals["secret_names"])


def test_problems_stop_the_plan_before_anything_is_read(tf: TerraformConfig) -> None:
    problems = tf.locals["setting_problems"]
    assert all(f"local.{table}" in problems for table in CHECK_TABLES), problems
    project = tf.data["google_project"]["this"]
    precondition = first(first(project["lifecycle"])["precondition"])
    assert precondition["condition"] == "${length(local.setting_problems) == 0}"
    assert "local.setting_problems" in precondition["error_message"]
