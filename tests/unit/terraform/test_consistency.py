"""terraform/ agrees with the code it deploys: functions, topics, environment, identities.

Directories the rest of the project has not written yet (a function, config/k8s) are skipped
with a message locally and fail in CI.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.terraform import (
    REPO,
    TERRAFORM,
    TerraformConfig,
    first,
    load_script,
    skip_or_fail,
)

FUNCTIONS = REPO / "functions"
K8S_MANIFESTS = REPO / "config" / "k8s"
ENV_DEFAULTS = TERRAFORM / "env-defaults.txt"
FIRESTORE_STORE = REPO / "khook_core" / "state" / "firestore.py"
HTTP_TRANSPORT = REPO / "khook_core" / "transport" / "http.py"
FUNCTION = "google_cloudfunctions2_function"
SCHEDULER_JOB = "google_cloud_scheduler_job"
ENV_NAME = re.compile(r"K(?:HOOK|AGENT)_[A-Z0-9_]+")
# What scripts/package.py leaves out of every function archive: the forwarder runs in the
# cluster (its environment comes from config/k8s) and the khook command on a laptop or in CI.
NOT_IN_FUNCTIONS = tuple(REPO / "khook_core" / d for d in load_script("package").NOT_IN_FUNCTIONS)
PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")


def function_dirs() -> list[Path]:
    if not FUNCTIONS.is_dir():
        return []
    return sorted(
        p for p in FUNCTIONS.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))
    )


def function_resources(tf: TerraformConfig) -> dict[str, tuple[str, Mapping[str, Any]]]:
    """Function name -> (resource name, body): one resource for_each over local.functions."""
    resources = tf.of_type(FUNCTION)
    assert list(resources) == ["this"], f"expected one {FUNCTION}.this, found {list(resources)}"
    body = resources["this"]
    assert body.get("for_each") == "${local.enabled_functions}", (
        f"{FUNCTION}.this: for_each must be local.enabled_functions"
    )
    assert "in local.functions :" in tf.locals["enabled_functions"], (
        "local.enabled_functions must select from local.functions"
    )
    return {name: ("this", body) for name in tf.locals["functions"]}


def function_spec(tf: TerraformConfig, name: str) -> dict[str, Any]:
    """A function's entry in local.functions over local.function_defaults, as enabled_functions."""
    assert "merge(local.function_defaults, spec)" in tf.locals["enabled_functions"]
    return {**tf.locals["function_defaults"], **tf.locals["functions"][name]}


def spec_value(tf: TerraformConfig, name: str, expression: str) -> Any:
    """The value of ``${each.value.KEY}`` for one function; other values unchanged."""
    match = re.fullmatch(r"\$\{each\.value\.(\w+)\}", expression)
    return function_spec(tf, name)[match.group(1)] if match else expression


def env_names_in(path: Path) -> set[str]:
    """KHOOK_/KAGENT_ names a module reads: whole string literals plus BaseSettings fields."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and ENV_NAME.fullmatch(node.value)
    }
    classes = [node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    groups = {"EnvSettings"}
    for cls in classes:  # in source order: a group's base is defined before it
        if any(ast.unparse(base).rsplit(".", 1)[-1] in groups for base in cls.bases):
            groups.add(cls.name)
    for cls in classes:
        names |= settings_field_names(cls, groups)
    return names


def settings_field_names(cls: ast.ClassDef, groups: Collection[str] = ()) -> set[str]:
    """``env_prefix`` + field name for settings classes (fields without an alias): subclasses
    of khook's ``EnvSettings`` (prefix ``KHOOK_`` unless the class sets ``env_prefix``) and
    pydantic-settings classes (``model_config = SettingsConfigDict(env_prefix=...)``).

    A field typed as one of the module's settings classes (``groups``) is a nested group read
    with its own names, and a private attribute (``_name``) is no field: neither is a variable."""
    bases = {ast.unparse(base).rsplit(".", 1)[-1] for base in cls.bases}
    prefix: object = "KHOOK_" if "EnvSettings" in bases else None
    for stmt in cls.body:
        if (
            isinstance(stmt, ast.AnnAssign)
            and isinstance(stmt.target, ast.Name)
            and stmt.target.id == "env_prefix"
            and isinstance(stmt.value, ast.Constant)
        ):
            prefix = stmt.value.value
        value = stmt.value if isinstance(stmt, ast.Assign | ast.AnnAssign) else None
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
        if isinstance(value, ast.Call) and any(
            isinstance(t, ast.Name) and t.id == "model_config" for t in targets
        ):
            for kw in value.keywords:
                if kw.arg == "env_prefix" and isinstance(kw.value, ast.Constant):
                    prefix = kw.value.value
    if not isinstance(prefix, str) or not ENV_NAME.fullmatch(prefix + "X"):
        return set()
    names = set()
    for stmt in cls.body:
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
            continue
        if stmt.target.id in ("model_config", "env_prefix") or "ClassVar" in ast.unparse(
            stmt.annotation
        ):
            continue
        if stmt.target.id.startswith("_") or ast.unparse(stmt.annotation) in groups:
            continue
        call = stmt.value
        aliased = isinstance(call, ast.Call) and any(
            kw.arg in {"alias", "validation_alias"} for kw in call.keywords
        )
        if not aliased:  # an alias is a literal (collected above) or built at runtime
            names.add(prefix + stmt.target.id.upper())
    return names


def http_credential_names(function_dir: Path) -> set[str]:
    """``KHOOK_<SOURCE>_<FIELD>``: HttpCredentials fields, for a function served by transport.http.

    The prefix is built at runtime from the source name (the function's directory name), so the
    literal scan cannot see these names.
    """
    main = function_dir / "main.py"
    if not (HTTP_TRANSPORT.is_file() and main.is_file()):
        return set()
    imports = ast.walk(ast.parse(main.read_text(encoding="utf-8")))
    if not any(
        (
            isinstance(n, ast.ImportFrom)
            and n.module == "khook_core.transport"
            and any(a.name == "http" for a in n.names)
        )
        or (isinstance(n, ast.ImportFrom) and n.module == "khook_core.transport.http")
        or (
            isinstance(n, ast.Import)
            and any(a.name == "khook_core.transport.http" for a in n.names)
        )
        for n in imports
    ):
        return set()
    tree = ast.parse(HTTP_TRANSPORT.read_text(encoding="utf-8"))
    fields = [
        stmt.target.id
        for cls in tree.body
        if isinstance(cls, ast.ClassDef) and cls.name == "HttpCredentials"
        for stmt in cls.body
        if isinstance(stmt, ast.AnnAssign)
        and isinstance(stmt.target, ast.Name)
        and stmt.target.id != "model_config"
        and "ClassVar" not in ast.unparse(stmt.annotation)
    ]
    prefix = "KHOOK_" + re.sub(r"[^A-Z0-9]+", "_", function_dir.name.upper()).strip("_") + "_"
    return {prefix + name.upper() for name in fields}


def function_reads(function_dir: Path) -> set[str]:
    """Names read by the function's own files, including its HTTP credentials."""
    names = http_credential_names(function_dir)
    for path in python_files(function_dir):
        names |= env_names_in(path)
    return names


def python_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" not in path.parts and not any(
            path.is_relative_to(p) for p in NOT_IN_FUNCTIONS
        ):
            yield path


def env_defaults() -> dict[str, str]:
    """Name -> reason from terraform/env-defaults.txt."""
    entries: dict[str, str] = {}
    for number, raw in enumerate(ENV_DEFAULTS.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, reason = line.partition(" ")
        assert ENV_NAME.fullmatch(name), (
            f"{ENV_DEFAULTS.name}:{number}: {name!r} is not an env name"
        )
        assert reason.strip(), f"{ENV_DEFAULTS.name}:{number}: {name} needs a reason"
        assert name not in entries, f"{ENV_DEFAULTS.name}:{number}: {name} listed twice"
        entries[name] = reason.strip()
    return entries


def function_env(tf: TerraformConfig, name: str) -> set[str]:
    """Environment names a deployed function gets: plain variables plus its secrets."""
    _, body = function_resources(tf)[name]
    service = first(body["service_config"])
    spec = tf.locals["functions"][name]
    value = service.get("environment_variables", {})
    if value == "${merge(local.environment, each.value.environment)}":
        env = {**tf.locals["environment"], **spec["environment"]}
    else:
        env = tf.local_ref(value)
    assert isinstance(env, Mapping), f"{name}: cannot evaluate environment_variables {value!r}"
    secrets = set(spec.get("secrets", []))
    dynamic = json.dumps(service.get("dynamic", []))
    if secrets:
        assert "secret_environment_variables" in dynamic, f"{name}: secrets are never injected"
    return set(env) | secrets


def yaml_documents(directory: Path) -> list[Any]:
    docs: list[Any] = []
    for path in sorted([*directory.rglob("*.yaml"), *directory.rglob("*.yml")]):
        docs.extend(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d)
    return docs


def env_values(node: Any, names: tuple[str, ...]) -> Iterator[str]:
    """Values given to ``names`` anywhere: container ``env`` entries or ConfigMap ``data``."""
    if isinstance(node, Mapping):
        if node.get("name") in names and isinstance(node.get("value"), str):
            yield node["value"]
        for key, value in node.items():
            if key in names and isinstance(value, str):
                yield value
            yield from env_values(value, names)
    elif isinstance(node, list):
        for item in node:
            yield from env_values(item, names)


def require_k8s_manifests() -> list[Any]:
    if not K8S_MANIFESTS.is_dir():
        skip_or_fail(
            f"{K8S_MANIFESTS.relative_to(REPO)} does not exist yet: forwarder checks skipped"
        )
    return yaml_documents(K8S_MANIFESTS)


# --- functions ------------------------------------------------------------------------------


def test_every_function_directory_is_deployed(tf: TerraformConfig) -> None:
    deployed = function_resources(tf)
    dirs = function_dirs()
    if not dirs:
        skip_or_fail("functions/ has no function directories yet")
    missing = [d.name for d in dirs if d.name not in deployed]
    assert not missing, f"functions/ without a {FUNCTION} resource (local.functions): {missing}"


@pytest.mark.parametrize(
    "name", ["kubernetes", "alertmanager", "webhook", "kafka", "cdc", "gcp", "sweep"]
)
def test_function_entry_point_exists_in_main_py(tf: TerraformConfig, name: str) -> None:
    resource_name, body = function_resources(tf)[name]
    entry_point = spec_value(tf, name, first(body["build_config"])["entry_point"])
    assert entry_point == "handle", f"{FUNCTION}.{resource_name}: entry point must be handle"
    main = FUNCTIONS / name / "main.py"
    if not main.is_file():
        skip_or_fail(f"{main.relative_to(REPO)} does not exist yet")
    tree = ast.parse(main.read_text(encoding="utf-8"), filename=str(main))
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert entry_point in defined, f"{main.relative_to(REPO)} defines no function {entry_point}()"


def test_every_function_has_its_own_runtime_identity(tf: TerraformConfig) -> None:
    for resource_name, body in tf.of_type(FUNCTION).items():
        email = first(body["service_config"]).get("service_account_email", "")
        assert "google_service_account.runtime[each.key].email" in email, (
            f"{FUNCTION}.{resource_name}: service_config.service_account_email must be the "
            f"function's own runtime account, found {email!r}"
        )


def test_every_event_trigger_retries(tf: TerraformConfig) -> None:
    for resource_name, body in tf.of_type(FUNCTION).items():
        for trigger in body.get("event_trigger", []):
            assert trigger.get("retry_policy") == "RETRY_POLICY_RETRY", (
                f"{FUNCTION}.{resource_name}: an event_trigger without "
                "retry_policy = RETRY_POLICY_RETRY loses events"
            )
            assert trigger.get("service_account_email"), (
                f"{FUNCTION}.{resource_name}: an event_trigger without service_account_email "
                "runs as the Compute Engine default account"
            )


# Each Pub/Sub function's own topic in local.pushes, keyed by the function's name.
OWN_TOPIC_PUSH = (
    "{for name in keys(local.pubsub_functions) : name => {function = name, "
    "topic_id = google_pubsub_topic.source[name].id, "
    "topic_name = google_pubsub_topic.source[name].name}}"
)


def test_pubsub_functions_have_a_dead_lettering_push_subscription(tf: TerraformConfig) -> None:
    assert not first(tf.of_type(FUNCTION)["this"]).get("event_trigger"), (
        "Eventarc's subscription cannot dead-letter: Pub/Sub functions get their own push"
    )
    assert OWN_TOPIC_PUSH in tf.locals["pushes"], "every Pub/Sub function pushes from its topic"
    subscriptions = tf.of_type("google_pubsub_subscription")
    ref = f"{FUNCTION}.this[each.value.function]"
    pushing = [
        (n, s) for n, s in subscriptions.items() if ref in json.dumps(s.get("push_config", []))
    ]
    assert [n for n, _ in pushing] == ["push"], "one push subscription resource, over pushes"
    for sub_name, sub in pushing:
        assert sub["for_each"] == "${local.pushes}", sub_name
        push = first(sub["push_config"])
        assert "oidc_token" in push, f"{sub_name}: push without an OIDC token"
        assert "dead_letter_policy" in sub, f"{sub_name}: no dead_letter_policy"
        assert "retry_policy" in sub, f"{sub_name}: no retry_policy (immediate redelivery)"
        assert sub["topic"] == "${each.value.topic_id}", sub_name
        assert push["push_endpoint"].endswith(
            "/projects/${var.project_id}/topics/${each.value.topic_name}"
        ), f"{sub_name}: the push endpoint must end with /projects/P/topics/T"
        dead_letter = first(sub["dead_letter_policy"])["dead_letter_topic"]
        assert dead_letter == "${google_pubsub_topic.dead_letter[each.value.function].id}"
        held = [
            n
            for n, s in subscriptions.items()
            if s.get("topic") == "${google_pubsub_topic.dead_letter[each.key].id}"
            and s.get("for_each") == "${local.pubsub_functions}"
            and "push_config" not in s
        ]
        assert held, f"{sub_name}: a function's dead-letter topic has no hold subscription"


def test_source_objects_are_named_after_their_content(tf: TerraformConfig) -> None:
    objects = tf.of_type("google_storage_bucket_object")
    assert objects
    for name, body in objects.items():
        assert "filemd5(" in body["name"] or "output_md5" in body["name"], (
            f"google_storage_bucket_object.{name}: name must contain the archive MD5, or code "
            "changes are not redeployed"
        )


# --- public access ---------------------------------------------------------------------------


def invoker_parts(tf: TerraformConfig) -> list[str]:
    """The comprehensions merged into local.invokers, one per kind of caller."""
    expression = tf.locals["invokers"]
    assert expression.startswith("${merge({for "), expression
    return ["{for " + part for part in expression.removeprefix("${merge(").split("{for ")[1:]]


def test_public_members_only_on_the_http_invoker(tf: TerraformConfig) -> None:
    public_parts = [p for p in invoker_parts(tf) if any(m in p for m in PUBLIC_MEMBERS)]
    assert public_parts == [
        '{for name in keys(local.public_functions) : "${name}/allUsers" => '
        '{function = name, member = "allUsers"}}, '
    ], f"allUsers only for local.public_functions, found {public_parts}"
    assert "allAuthenticatedUsers" not in tf.locals["invokers"]
    # As an HCL string literal, "allUsers" in an expression (messages may name it).
    literal = json.dumps('"allUsers"')[1:-1]
    others = [n for n, v in tf.locals.items() if n != "invokers" and literal in json.dumps(v)]
    assert not others, f"public members outside local.invokers: {others}"
    grants = [
        (t, n, body) for t, n, body in tf.all_resources() if "local.invokers" in json.dumps(body)
    ]
    assert {(t, n) for t, n, _ in grants} == {
        ("google_cloud_run_v2_service_iam_member", "invoker"),
        ("google_cloudfunctions2_function_iam_member", "invoker"),
    }
    for type_name, name, body in grants:
        assert body["role"] in ("roles/run.invoker", "roles/cloudfunctions.invoker"), body["role"]
        target = body.get("name", body.get("cloud_function"))
        assert target == f"${{{FUNCTION}.this[each.value.function].name}}", f"{type_name}.{name}"
        if type_name == "google_cloudfunctions2_function_iam_member":
            assert 'if !endswith(key, "/allUsers")' in body["for_each"], "no public function grant"
    for type_name, name, body in tf.all_resources():
        text = json.dumps(body)
        if any(m in text for m in PUBLIC_MEMBERS):
            assert (type_name, name) == ("google_cloudfunctions2_function_iam_member", "invoker")
            assert text.count("allUsers") == 1, (
                f"{type_name}.{name} names allUsers beyond its filter"
            )
    assert "local.http_functions" in tf.locals["public_functions"]
    http = {n for n, spec in tf.locals["functions"].items() if spec["trigger"] == "http"}
    assert http == {"alertmanager", "webhook", "console", "tasks"}
    # Only the two event receivers and the task receiver (a per-task token on every request)
    # can be public; the console is reached through IAM alone.
    public = tf.locals["public_functions"]
    assert (
        'name == "webhook" || name == "tasks" || (name == "alertmanager" && '
        "var.alertmanager_public)" in public
    )
    assert '"console"' in tf.locals["receiving_functions"]


def test_only_http_functions_accept_external_traffic(tf: TerraformConfig) -> None:
    for name, (_, body) in function_resources(tf).items():
        ingress = first(body["service_config"]).get("ingress_settings")
        assert ingress == '${each.value.trigger == "http" ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"}'
        trigger = function_spec(tf, name)["trigger"]
        assert trigger in ("http", "pubsub"), f"{name}: unknown trigger {trigger!r}"


def test_every_pubsub_function_answers_before_its_ack_deadline(tf: TerraformConfig) -> None:
    _, body = function_resources(tf)["kubernetes"]
    assert first(body["service_config"])["timeout_seconds"] == "${each.value.timeout}"
    conditions = [p["condition"] for p in first(body["lifecycle"])["precondition"]]
    assert (
        '${each.value.trigger != "pubsub" || each.value.timeout < local.push_ack_deadline}'
        in conditions
    )
    for name in function_resources(tf):
        timeout = tf.local_ref(function_spec(tf, name)["timeout"])
        if function_spec(tf, name)["trigger"] == "pubsub":
            assert int(timeout) < int(tf.locals["push_ack_deadline"]), name


# --- network: the optional route into a VPC ------------------------------------------------


def validation_regex(tf: TerraformConfig, variable: str) -> re.Pattern[str]:
    """A variable's pattern in local.setting_patterns (validation.tf), HCL escapes undone."""
    check = tf.locals["setting_patterns"][variable]
    assert f"var.{variable}" in json.dumps(check["values"]), f"setting_patterns.{variable}"
    return re.compile(check["pattern"].replace("\\\\", "\\"))


def rule_regex(tf: TerraformConfig, variable: str) -> re.Pattern[str]:
    """The pattern of ``regex("...", var.X)`` in local.setting_rules.X (HCL escapes undone)."""
    condition = tf.locals["setting_rules"][variable]["ok"]
    match = re.search(r'regex\("((?:[^"\\]|\\.)*)", var\.' + variable + r"\)", condition)
    assert match, f"setting_rules.{variable}: no regex(...): {condition}"
    return re.compile(match.group(1).replace("\\\\", "\\"))


def test_every_function_can_use_the_vpc_connector(tf: TerraformConfig) -> None:
    for resource_name, body in tf.of_type(FUNCTION).items():
        service = first(body["service_config"])
        assert service.get("vpc_connector") == "${var.vpc_connector}", (
            f"{FUNCTION}.{resource_name}: service_config.vpc_connector must be var.vpc_connector"
        )
        assert service.get("vpc_connector_egress_settings") == (
            "${var.vpc_connector == null ? null : var.vpc_egress}"
        ), f"{FUNCTION}.{resource_name}: egress follows var.vpc_egress, and only with a connector"
    assert tf.locals["setting_rules"]["vpc_connector_region"]["ok"] == (
        '${var.vpc_connector == null || try(split("/", var.vpc_connector)[3] == var.region, false)}'
    ), "no check that the connector is in var.region"


def test_vpc_variables_default_to_no_vpc_access(tf: TerraformConfig) -> None:
    assert tf.default("vpc_connector") is None
    assert tf.default("vpc_egress") == "PRIVATE_RANGES_ONLY"
    assert tf.variables["vpc_egress"].get("nullable") is False
    condition = tf.locals["setting_rules"]["vpc_egress"]["ok"]
    match = re.fullmatch(r"\$\{contains\(\[([^\]]*)\], var\.vpc_egress\)\}", condition)
    assert match, condition
    # The two values of VpcConnectorEgressSettings the API accepts (UNSPECIFIED aside).
    assert {v.strip().strip('"') for v in match.group(1).split(",")} == {
        "PRIVATE_RANGES_ONLY",
        "ALL_TRAFFIC",
    }


@pytest.mark.parametrize(
    ("connector", "valid"),
    [
        ("projects/my-project/locations/europe-west1/connectors/khook", True),
        ("projects/shared-vpc-host/locations/us-central1/connectors/gke-kagent-1", True),
        ("khook", False),  # the API wants the full name
        ("projects/my-project/locations/europe-west1/connectors/Khook", False),
        ("projects/my-project/locations/europe-west1/connectors/khook-", False),
        ("projects/my-project/locations/europe-west1/connectors/" + "c" * 26, False),
        ("projects/my-project/regions/europe-west1/connectors/khook", False),
        ("projects/my-project/locations/europe-west1/connectors/khook/", False),
    ],
)
def test_vpc_connector_validation(tf: TerraformConfig, connector: str, valid: bool) -> None:
    values = tf.locals["setting_patterns"]["vpc_connector"]["values"]
    assert values == "${var.vpc_connector == null ? [] : [var.vpc_connector]}", (
        "null (no connector) must pass"
    )
    assert bool(validation_regex(tf, "vpc_connector").search(connector)) is valid


@pytest.mark.parametrize(
    ("url", "cluster_internal"),
    [
        ("http://kagent-controller.kagent.svc.cluster.local:8083", True),
        ("http://kagent-controller.kagent.svc:8083/", True),
        ("http://kagent-controller.kagent.svc.cluster.local./api", True),
        ("http://KAGENT-CONTROLLER.KAGENT.SVC.CLUSTER.LOCAL", True),
        ("http://10.10.0.20:8083", False),
        ("https://kagent.internal.example.com", False),
        ("https://kagent.example.com/svc.cluster.local", False),
        ("https://svc.example.com", False),
    ],
)
def test_kagent_api_url_rejects_cluster_dns_names(
    tf: TerraformConfig, url: str, cluster_internal: bool
) -> None:
    """The code's default URL is an in-cluster name; a function can never resolve it."""
    condition = tf.locals["setting_rules"]["kagent_api_url"]["ok"]
    assert condition.startswith("${!can(regex("), condition
    assert bool(rule_regex(tf, "kagent_api_url").search(url)) is cluster_internal
    assert bool(validation_regex(tf, "kagent_api_url").search(url)), "still a URL"


# --- environment -----------------------------------------------------------------------------


def test_every_environment_variable_read_is_set_or_defaulted(tf: TerraformConfig) -> None:
    defaults = env_defaults()
    names = list(tf.locals["functions"])
    available = {name: function_env(tf, name) for name in names}
    anywhere = set().union(*available.values())
    unset: list[str] = []
    for path in python_files(REPO / "khook_core"):
        for env in sorted(env_names_in(path) - anywhere - set(defaults)):
            unset.append(f"{env} (read in {path.relative_to(REPO)})")
    for directory in function_dirs():
        env_of_function = available.get(directory.name, set())
        for env in sorted(function_reads(directory) - env_of_function - set(defaults)):
            unset.append(f"{env} (read by {directory.relative_to(REPO)})")
    assert not unset, (
        "environment variables read by the code but neither set in terraform/ "
        "(local.environment, local.functions[*].environment and .secrets) nor listed in "
        f"{ENV_DEFAULTS.relative_to(REPO)}: " + ", ".join(unset)
    )


def test_env_defaults_lists_only_names_the_code_reads() -> None:
    read = set().union(*(env_names_in(p) for p in python_files(REPO / "khook_core")))
    for directory in function_dirs():
        read |= function_reads(directory)
    stale = sorted(set(env_defaults()) - read)
    assert not stale, f"{ENV_DEFAULTS.relative_to(REPO)} lists names no code reads: {stale}"


def test_env_scan_finds_literals_and_settings_fields(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import os\n"
        "from pydantic_settings import BaseSettings, SettingsConfigDict\n"
        "MARKER = '<<<KHOOK_NOT_AN_ENV'\n"
        "token = os.environ.get('KHOOK_A2A_TOKEN')\n"
        "class S(BaseSettings):\n"
        "    model_config = SettingsConfigDict(env_prefix='KHOOK_')\n"
        "    state: str = 'memory'\n"
        "    topic: str = Field(default='t', validation_alias='KAGENT_TOPIC')\n"
    )
    assert env_names_in(module) == {"KHOOK_A2A_TOKEN", "KHOOK_STATE", "KAGENT_TOPIC"}


def test_env_scan_finds_env_settings_fields(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from khook_core.envsettings import EnvSettings\n"
        "class S(EnvSettings):\n"
        "    state: str = 'memory'\n"
        "    url: str = Field(default='u', validation_alias=AliasChoices('KAGENT_API_URL'))\n"
        "class F(EnvSettings):\n"
        "    env_prefix: ClassVar[str] = 'KHOOK_FORWARDER_'\n"
        "    port: int = 8080\n"
    )
    # The prefix is a string literal too, and literals are collected as they are.
    assert env_names_in(module) == {
        "KHOOK_STATE",
        "KAGENT_API_URL",
        "KHOOK_FORWARDER_PORT",
        "KHOOK_FORWARDER_",
    }


# --- Pub/Sub and the forwarder ---------------------------------------------------------------


def topic_names(tf: TerraformConfig) -> dict[str, str]:
    """Source -> ingress topic name, with variable defaults."""
    topic = tf.of_type("google_pubsub_topic")["source"]
    assert topic["for_each"] == "${local.pubsub_functions}"
    return {
        name: tf.render(topic["name"], each_key=name)
        for name, spec in tf.locals["functions"].items()
        if spec["trigger"] == "pubsub"
    }


def test_pubsub_functions_have_topics(tf: TerraformConfig) -> None:
    """The bridged sources' ingress topics, and the topic the sweep's scheduler job ticks."""
    assert topic_names(tf) == {
        "kubernetes": "khook-kubernetes",
        "kafka": "khook-kafka",
        "cdc": "khook-cdc",
        "gcp": "khook-gcp",
        "sweep": "khook-sweep",
    }


def test_the_gcp_function_also_takes_cloud_builds_with_retries_and_dead_letters(
    tf: TerraformConfig,
) -> None:
    """Cloud Build publishes only to ``cloud-builds``; the gcp function needs a second input."""
    assert (
        'local.gcp_enabled ? {"gcp-cloud-builds" = {function = "gcp", '
        'topic_id = "projects/${var.project_id}/topics/cloud-builds", '
        'topic_name = "cloud-builds"}} : {}'
    ) in tf.locals["pushes"], "local.pushes: the gcp function also pushes from cloud-builds"
    sub = tf.of_type("google_pubsub_subscription")["push"]
    assert sub["for_each"] == "${local.pushes}"
    push = first(sub["push_config"])
    # The same endpoint (topic in the CloudEvent source), OIDC and dead letters as any push.
    assert push["push_endpoint"].endswith("/topics/${each.value.topic_name}")
    assert first(push["oidc_token"])["service_account_email"] == (
        "${google_service_account.pusher.email}"
    )
    assert first(sub["dead_letter_policy"])["dead_letter_topic"] == (
        "${google_pubsub_topic.dead_letter[each.value.function].id}"
    )
    assert first(sub["expiration_policy"])["ttl"] == ""
    assert "${google_pubsub_topic.cloud_builds}" in sub["depends_on"]
    subscriber = tf.of_type("google_pubsub_subscription_iam_member")["push_subscriber"]
    assert subscriber["for_each"] == "${local.pushes}", "dead-lettering needs the service agent"
    grant = tf.of_type("google_pubsub_topic_iam_member")["monitoring_publisher"]
    assert grant["topic"] == '${google_pubsub_topic.source["gcp"].id}'
    assert grant["role"] == "roles/pubsub.publisher"
    assert "gcp-sa-monitoring-notification" in tf.locals["monitoring_notification_agent"]
    channel = tf.of_type("google_monitoring_notification_channel")["pubsub"]
    assert channel["type"] == "pubsub"
    assert channel["labels"]["topic"] == '${google_pubsub_topic.source["gcp"].id}'


def test_forwarder_publishes_to_the_kubernetes_topic(tf: TerraformConfig) -> None:
    grant = tf.of_type("google_pubsub_topic_iam_member")["forwarder_publisher"]
    assert grant["topic"] == '${google_pubsub_topic.source["kubernetes"].id}'
    assert grant["role"] == "roles/pubsub.publisher"
    docs = require_k8s_manifests()
    topics = set(env_values(docs, ("KHOOK_TOPIC", "KHOOK_FORWARDER_TOPIC")))
    assert topics, f"{K8S_MANIFESTS.relative_to(REPO)} sets no KHOOK_TOPIC for the forwarder"
    expected = topic_names(tf)["kubernetes"]
    for topic in topics:
        assert topic.rsplit("/", 1)[-1] == expected, (
            f"the forwarder publishes to {topic!r}, Terraform creates {expected!r}"
        )


def test_forwarder_uses_firestore_documents_only_when_it_publishes_cluster_hooks(
    tf: TerraformConfig,
) -> None:
    """With cluster Hooks the forwarder writes the snapshot and reads the audit trail in
    Firestore; that is datastore.user on the project, opt-in, and its only grant of its own
    (telemetry's exporter roles are granted alike to every identity, in monitoring.tf)."""
    forwarder = "serviceAccount:${google_service_account.forwarder[0].email}"
    grants = {
        name: grant
        for name, grant in tf.of_type("google_project_iam_member").items()
        if grant["member"] == forwarder
    }
    assert list(grants) == ["forwarder_datastore"]
    grant = grants["forwarder_datastore"]
    assert grant["role"] == "roles/datastore.user"
    assert grant["count"] == ("${local.forwarder_enabled && var.forwarder_cluster_hooks ? 1 : 0}")
    assert tf.default("forwarder_cluster_hooks") is False


def test_forwarder_service_account_matches_workload_identity(tf: TerraformConfig) -> None:
    docs = require_k8s_manifests()
    accounts = [d for d in docs if isinstance(d, Mapping) and d.get("kind") == "ServiceAccount"]
    if not accounts:
        skip_or_fail(f"{K8S_MANIFESTS.relative_to(REPO)} has no ServiceAccount yet")
    namespace = tf.default("forwarder_namespace")
    name = tf.default("forwarder_service_account")
    assert any(
        a["metadata"].get("name") == name and a["metadata"].get("namespace", namespace) == namespace
        for a in accounts
    ), f"no ServiceAccount {namespace}/{name} in {K8S_MANIFESTS.relative_to(REPO)}"


# --- the sweep and its scheduler job ---------------------------------------------------------


def scheduler_job(tf: TerraformConfig) -> Mapping[str, Any]:
    jobs = tf.of_type(SCHEDULER_JOB)
    assert list(jobs) == ["sweep"], f"expected one {SCHEDULER_JOB}.sweep, found {list(jobs)}"
    return jobs["sweep"]


def sweep_schedule_pattern(tf: TerraformConfig) -> re.Pattern[str]:
    """The cron regex of var.sweep_schedule's check (RE2 without escapes reads alike)."""
    check = tf.locals["setting_patterns"]["sweep_schedule"]
    assert check["values"] == '${var.sweep_schedule == "" ? [] : [var.sweep_schedule]}', (
        'var.sweep_schedule must accept "" (sweep off) before any other check'
    )
    return re.compile(check["pattern"])


def test_sweep_is_enabled_by_its_schedule_not_by_sources(tf: TerraformConfig) -> None:
    spec = tf.locals["functions"]["sweep"]
    assert spec["trigger"] == "pubsub"
    assert "KHOOK_A2A_TOKEN" in spec["secrets"], "the sweep dispatches to agents"
    assert tf.locals["sweep_enabled"] == '${var.sweep_schedule != ""}'
    assert (
        'if name == "sweep" ? local.sweep_enabled : name == "console" ? local.console_enabled '
        ': name == "tasks" ? var.task_push_notifications : contains(var.sources, name)'
        in tf.locals["enabled_functions"]
    ), (
        "local.enabled_functions: sweep must follow local.sweep_enabled, the console "
        "local.console_enabled, the task receiver var.task_push_notifications, the rest "
        "var.sources"
    )
    assert tf.locals["console_enabled"] == "${length(var.console_viewers) > 0}"
    sources = set(tf.default("sources"))
    assert "sweep" not in sources
    assert (
        "setsubtract(var.sources, local.source_names)"
        in tf.locals["setting_rules"]["sources"]["ok"]
    )
    selectable = set(tf.locals["source_names"])
    assert set(tf.locals["functions"]) - {"sweep", "console", "tasks"} == selectable, (
        "every function but sweep, the console and the task receiver is a source that "
        "var.sources can select"
    )
    # gcp creates project-wide Cloud Build and Monitoring wiring: deployed only when asked for.
    assert set(tf.locals["functions"]) - {"sweep", "gcp", "console", "tasks"} == sources
    assert "sweep" not in selectable
    # The forwarder comes with the kubernetes source, never with the sweep.
    assert '"kubernetes"' in tf.locals["forwarder_enabled"]


def test_scheduler_job_exists_only_with_a_schedule(tf: TerraformConfig) -> None:
    job = scheduler_job(tf)
    assert job.get("count") == "${local.sweep_enabled ? 1 : 0}", (
        f"{SCHEDULER_JOB}.sweep must exist exactly when the sweep function does"
    )
    assert "for_each" not in job


def test_scheduler_job_publishes_to_the_sweep_topic(tf: TerraformConfig) -> None:
    job = scheduler_job(tf)
    assert not {"http_target", "app_engine_http_target"} & set(job), "Pub/Sub target only"
    # Pub/Sub targets ignore attempt_deadline; setting it leaves a permanent diff.
    assert "attempt_deadline" not in job
    assert job["region"] == "${var.region}"
    target = first(job["pubsub_target"])
    assert target["topic_name"] == '${google_pubsub_topic.source["sweep"].id}'
    assert topic_names(tf)["sweep"] == tf.render(job["name"]) == "khook-sweep"
    # A Pub/Sub message needs data or attributes; the function ignores what the tick carries.
    assert re.fullmatch(r"\$\{base64encode\(.+\)\}", target["data"]), target["data"]


def test_scheduler_job_schedule_comes_from_the_variables(tf: TerraformConfig) -> None:
    job = scheduler_job(tf)
    assert job["schedule"] == "${var.sweep_schedule}"
    assert job["time_zone"] == "${var.sweep_time_zone}"
    assert tf.default("sweep_schedule") == "* * * * *"
    assert tf.default("sweep_time_zone") == "Etc/UTC"


@pytest.mark.parametrize(
    ("schedule", "valid"),
    [
        ("* * * * *", True),
        ("*/5 * * * *", True),
        ("0,30 8-18 * * MON-FRI", True),
        ("* * * *", False),
        ("* * * * * *", False),
        ("every 5 minutes", False),
        (" * * * * *", False),
    ],
)
def test_sweep_schedule_validation(tf: TerraformConfig, schedule: str, valid: bool) -> None:
    assert bool(sweep_schedule_pattern(tf).search(schedule)) is valid


def test_scheduler_retries_end_before_the_next_tick(tf: TerraformConfig) -> None:
    """A retry covers only a failed publish; at the default schedule the next tick is 60 s away."""
    retry = first(scheduler_job(tf)["retry_config"])
    count = int(retry["retry_count"])
    assert 0 <= count <= 5, "Cloud Scheduler allows 0 to 5 retries"
    longest = int(str(retry["max_backoff_duration"]).removesuffix("s"))
    assert count * longest < 60, f"{count} retries up to {longest}s apart outlast a minute"


# --- Firestore -------------------------------------------------------------------------------


def test_audit_counters_expire_with_the_audit_records(tf: TerraformConfig) -> None:
    """Trimming the audit trail trims its per-minute counters too (else counts would keep
    records that are gone), and their map of counts is never indexed."""
    ttl = tf.of_type("google_firestore_field")["ttl"]
    trimmed, kept = str(ttl["for_each"]).split(" : ", 1)
    assert "firings" in trimmed
    assert "firing_counts" in trimmed
    assert "firing_counts" not in kept
    counts = tf.of_type("google_firestore_field")["firing_counts_counts"]
    assert (counts["collection"], counts["field"]) == ("firing_counts", "counts")
    assert "ttl_config" not in counts
    literals = {
        n.value
        for n in ast.walk(ast.parse(FIRESTORE_STORE.read_text(encoding="utf-8")))
        if isinstance(n, ast.Constant) and isinstance(n.value, str)
    }
    assert {"firing_counts", "counts", "expire_at"} <= literals


def test_claims_ttl_matches_the_firestore_state_store(tf: TerraformConfig) -> None:
    ttl = tf.of_type("google_firestore_field")["ttl"]
    assert "claims" in ttl["for_each"]
    assert (ttl["collection"], ttl["field"]) == ("${each.key}", "expire_at")
    assert "ttl_config" in ttl
    if not FIRESTORE_STORE.is_file():
        skip_or_fail(f"{FIRESTORE_STORE.relative_to(REPO)} does not exist yet")
    literals = {
        n.value
        for n in ast.walk(ast.parse(FIRESTORE_STORE.read_text(encoding="utf-8")))
        if isinstance(n, ast.Constant) and isinstance(n.value, str)
    }
    assert {"claims", "expire_at"} <= literals, (
        f"{FIRESTORE_STORE.relative_to(REPO)} no longer uses collection 'claims' "
        "and field 'expire_at'"
    )
