from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from khook_core.catalog import EventCatalog
from khook_core.errors import ConfigError
from khook_core.event import Event, EventId, Resource, Severity
from khook_core.hooks import hook_files, load_hooks
from tests.support.paths import COMPAT

KNOWN = {"pod-restart", "oom-kill", "pod-pending", "probe-failed", "node-not-ready", "alert-firing"}

# file → (hooks, event configurations), counted by hand from the files
COMPAT_EXPECTED = {
    "basic-pod-monitoring.yaml": (1, 2),
    "ci-cd-monitoring.yaml": (1, 3),
    "development-monitoring.yaml": (1, 2),
    "kagent_v1alpha2_hook.yaml": (1, 3),
    "multi-namespace-monitoring.yaml": (2, 3),
    "performance-monitoring.yaml": (1, 3),
    "production-monitoring.yaml": (1, 4),
    "security-monitoring.yaml": (1, 2),
}


def event(
    type_: str = "pod-restart",
    namespace: str = "shop",
    source: str = "kubernetes",
    **changes: object,
) -> Event:
    base = Event(
        id=EventId("e1"),
        source=source,
        type=type_,
        reason="BackOff",
        resource=Resource(kind="Pod", name="web-0", namespace=namespace),
        timestamp=datetime(2026, 1, 5, tzinfo=UTC),
    )
    return base.model_copy(update=changes)


def load_text(tmp_path: Path, text: str, name: str = "hooks.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return load_hooks([path], KNOWN), path


@pytest.mark.parametrize("name", sorted(COMPAT_EXPECTED))
def test_every_khook_example_loads(name: str):
    hooks = load_hooks([COMPAT / "khook-examples" / name], KNOWN)
    n_hooks, n_configs = COMPAT_EXPECTED[name]
    assert len(hooks.hooks()) == n_hooks
    assert len(hooks.rules) == n_configs


def test_compat_examples_all_match_expected_counts():
    assert sorted(p.name for p in hook_files(COMPAT / "khook-examples")) == sorted(COMPAT_EXPECTED)


# file → (hook, eventType, agent namespace/name) of each configuration, read from the files
COMPAT_AGENTS = {
    "basic-pod-monitoring.yaml": [
        ("kagent/basic-pod-monitoring", "pod-restart", "kagent/k8s-agent"),
        ("kagent/basic-pod-monitoring", "oom-kill", "kagent/k8s-agent"),
    ],
    "ci-cd-monitoring.yaml": [
        ("ci-cd/ci-cd-monitoring", "pod-pending", "ci-cd/ci-cd-engineer"),  # no namespace
        ("ci-cd/ci-cd-monitoring", "pod-restart", "kagent/ci-cd-engineer"),
        ("ci-cd/ci-cd-monitoring", "probe-failed", "kagent/ci-cd-engineer"),  # agentId
    ],
    "development-monitoring.yaml": [
        ("development/dev-monitoring", "pod-restart", "kagent/dev-helper"),
        ("development/dev-monitoring", "oom-kill", "kagent/dev-helper"),
    ],
    "kagent_v1alpha2_hook.yaml": [  # the legacy agentId form throughout
        ("default/hook-sample", "pod-restart", "kagent/pod-restart-agent"),
        ("default/hook-sample", "pod-pending", "kagent/scheduling-agent"),
        ("default/hook-sample", "oom-kill", "kagent/memory-agent"),
    ],
    "multi-namespace-monitoring.yaml": [
        ("staging/staging-monitoring", "pod-restart", "kagent/staging-analyzer"),
        ("staging/staging-monitoring", "probe-failed", "kagent/staging-analyzer"),
        ("test/test-monitoring", "pod-pending", "kagent/ci-cd-helper"),
    ],
    "performance-monitoring.yaml": [
        ("performance/performance-monitoring", "oom-kill", "kagent/performance-optimizer"),
        ("performance/performance-monitoring", "pod-pending", "kagent/capacity-planner"),
        ("performance/performance-monitoring", "pod-restart", "kagent/reliability-engineer"),
    ],
    "production-monitoring.yaml": [
        ("production/production-monitoring", "pod-restart", "kagent/incident-manager"),
        ("production/production-monitoring", "pod-pending", "kagent/scheduling-analyzer"),
        ("production/production-monitoring", "probe-failed", "kagent/health-checker"),
        ("production/production-monitoring", "oom-kill", "kagent/capacity-planner"),
    ],
    "security-monitoring.yaml": [
        ("security/security-monitoring", "pod-restart", "kagent/security-analyst"),
        ("security/security-monitoring", "probe-failed", "kagent/security-analyst"),
    ],
}


def test_compat_agent_expectations_cover_every_example():
    assert sorted(COMPAT_AGENTS) == sorted(COMPAT_EXPECTED)


@pytest.mark.parametrize("name", sorted(COMPAT_AGENTS))
def test_every_khook_example_sends_each_event_type_to_its_agent(name: str):
    hooks = load_hooks([COMPAT / "khook-examples" / name], KNOWN)
    assert [(r.hook, r.event_type, r.target.label()) for r in hooks.rules] == COMPAT_AGENTS[name]
    assert {r.target.kind for r in hooks.rules} == {"agent"}


def test_agent_ref_without_namespace_uses_the_hook_namespace():
    hooks = load_hooks([COMPAT / "khook-examples" / "basic-pod-monitoring.yaml"], KNOWN)
    assert {r.target.label() for r in hooks.rules} == {"kagent/k8s-agent"}
    assert all(r.hook == "kagent/basic-pod-monitoring" for r in hooks.rules)


def test_legacy_agent_id_is_read_as_agent_ref_with_a_deprecation_warning(
    caplog: pytest.LogCaptureFixture,
):
    with caplog.at_level(logging.WARNING):
        hooks = load_hooks([COMPAT / "khook-examples" / "kagent_v1alpha2_hook.yaml"], KNOWN)
    assert [(r.event_type, r.target.namespace, r.target.name) for r in hooks.rules] == [
        ("pod-restart", "kagent", "pod-restart-agent"),
        ("pod-pending", "kagent", "scheduling-agent"),
        ("oom-kill", "kagent", "memory-agent"),
    ]
    assert "agentId is deprecated" in caplog.text


HOOK = """\
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata:
  name: web
  namespace: shop
spec:
  eventConfigurations:
  - eventType: pod-restart
    agentRef: {{name: k8s-agent}}
    prompt: "{prompt}"
{more}"""


@pytest.mark.parametrize(
    ("prompt", "more", "line", "field", "expected"),
    [
        (
            "Pod {{.ResourceName}}",
            "  - eventType: pod-exploded\n    agentRef: {name: a}\n    prompt: x\n",
            11,
            "spec.eventConfigurations[1].eventType",
            "unknown eventType",
        ),
        ("", "", 10, "spec.eventConfigurations[0].prompt", "at least 1 character"),
        (
            "Pod {{.Podname}}",
            "",
            10,
            "spec.eventConfigurations[0].prompt",
            "unknown placeholder {{.Podname}}",
        ),
        (
            "Pod {{.ResourceName}}",
            "  - eventType: pod-restart\n    agentRef: {name: b}\n    prompt: x\n",
            11,
            "spec.eventConfigurations[1].eventType",
            "duplicate eventType 'pod-restart'",
        ),
        (
            "Pod {{.ResourceName}}",
            "  - eventType: oom-kill\n    prompt: x\n",
            11,
            "spec.eventConfigurations[1].agentRef",
            "no agent",
        ),
        (
            "Pod {{ print 1 }}",
            "",
            10,
            "spec.eventConfigurations[0].prompt",
            "unsupported template syntax",
        ),
    ],
    ids=[
        "unknown-event-type",
        "empty-prompt",
        "unknown-placeholder",
        "duplicate-event-type",
        "no-agent",
        "template-action",
    ],
)
def test_invalid_hooks_are_errors_naming_file_hook_and_field(
    tmp_path: Path, prompt: str, more: str, line: int, field: str, expected: str
):
    path = tmp_path / "bad.yaml"
    path.write_text(HOOK.format(prompt=prompt, more=more))
    with pytest.raises(ConfigError) as info:
        load_hooks([path], KNOWN)
    (problem,) = info.value.problems
    text = str(problem)
    assert text.startswith(f"{path}:{line}: hook shop/web: {field}")
    assert expected in text


def test_a_field_pydantic_rejects_hides_no_other_problem_of_the_hook(tmp_path: Path):
    more = (
        "  - eventType: pod-exploded\n    agentRef: {name: a}\n    prompt: x\n"
        "  - eventType: oom-kill\n    agentRef: {name: a}\n    prompt: '{{.Nope}}'\n"
        "  - eventType: pod-restart\n    agentRef: {name: a}\n    prompt: x\n"
        "  - eventType: pod-pending\n    prompt: x\n"
    )
    path = tmp_path / "bad.yaml"
    path.write_text(HOOK.format(prompt="", more=more))
    with pytest.raises(ConfigError) as info:
        load_hooks([path], KNOWN)
    found = [(p.line, p.message.split(": ")[1]) for p in info.value.problems]
    assert found == [
        (10, "spec.eventConfigurations[0].prompt"),
        (11, "spec.eventConfigurations[1].eventType"),
        (16, "spec.eventConfigurations[2].prompt"),
        (17, "spec.eventConfigurations[3].eventType"),
        (20, "spec.eventConfigurations[4].agentRef"),
    ]
    text = "\n".join(str(p) for p in info.value.problems)
    for expected in (
        "at least 1 character",
        "unknown eventType 'pod-exploded'",
        "unknown placeholder {{.Nope}}",
        "duplicate eventType 'pod-restart'",
        "no agent",
    ):
        assert expected in text


def test_every_problem_of_one_configuration_is_reported(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        HOOK.format(prompt="x", more="  - eventType: pod-exploded\n    prompt: '{{.Nope}}'\n")
        + "  - eventType: pod-gone\n    prompt: ''\n"
    )
    with pytest.raises(ConfigError) as info:
        load_hooks([path], KNOWN)
    found = [(p.line, p.message.split(": ")[1]) for p in info.value.problems]
    assert found == [
        (14, "spec.eventConfigurations[2].prompt"),  # pydantic's, first
        (11, "spec.eventConfigurations[1].eventType"),
        (11, "spec.eventConfigurations[1].agentRef"),
        (12, "spec.eventConfigurations[1].prompt"),
        (13, "spec.eventConfigurations[2].eventType"),
        (13, "spec.eventConfigurations[2].agentRef"),
    ]


def test_event_types_are_not_checked_without_a_list_of_known_ones(tmp_path: Path):
    path = tmp_path / "hooks.yaml"
    path.write_text(HOOK.format(prompt="x", more="").replace("pod-restart", "pod-exploded"))
    assert [r.event_type for r in load_hooks([path], None).rules] == ["pod-exploded"]


def test_a_key_written_twice_in_a_hook_is_an_error(tmp_path: Path):
    path = tmp_path / "hooks.yaml"
    path.write_text(HOOK.format(prompt="x", more="    prompt: y\n"))
    with pytest.raises(ConfigError) as info:
        load_hooks([path], KNOWN)
    assert [str(p) for p in info.value.problems] == [
        f"{path}:11: duplicate key 'prompt' (first at line 10)"
    ]


def test_problems_from_several_files_are_all_reported(tmp_path: Path):
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text(
            HOOK.format(prompt="{{.Nope}}", more="").replace("name: web", f"name: {name[0]}")
        )
    with pytest.raises(ConfigError) as info:
        load_hooks(hook_files(tmp_path), KNOWN)
    assert len(info.value.problems) == 2


def test_multi_document_file_and_non_hook_documents(tmp_path: Path):
    text = (
        HOOK.format(prompt="x", more="")
        + "---\napiVersion: v1\nkind: ConfigMap\n---\n"
        + (HOOK.format(prompt="y", more="").replace("name: web", "name: api"))
    )
    hooks, _ = load_text(tmp_path, text)
    assert hooks.hooks() == ["shop/api", "shop/web"]


def test_a_hook_sees_kubernetes_events_of_its_own_namespace_only(tmp_path: Path):
    hooks, _ = load_text(tmp_path, HOOK.format(prompt="x", more=""))
    assert [r.hook for r in hooks.match(event(namespace="shop"))] == ["shop/web"]
    assert hooks.match(event(namespace="other")) == []
    assert hooks.match(event(type_="oom-kill")) == []
    assert hooks.match(event(source="alertmanager")) == []


def test_extensions_widen_and_narrow_matching(tmp_path: Path):
    text = HOOK.format(
        prompt="x",
        more="    reasons: [BackOff]\n    minSeverity: warning\n"
        "    matchTags: {team: web}\n    dedupWindow: 30m\n",
    ).replace("spec:\n", "spec:\n  namespaces: ['*']\n  sources: [kubernetes, alertmanager]\n")
    hooks, _ = load_text(tmp_path, text)
    (rule,) = hooks.rules
    assert rule.dedup_window is not None
    assert rule.dedup_window.total_seconds() == 1800
    ok = event(namespace="anywhere", tags={"team": "web"}, severity=Severity.ERROR)
    assert hooks.match(ok)
    assert hooks.match(ok.model_copy(update={"source": "alertmanager"}))
    assert not hooks.match(ok.model_copy(update={"reason": "Killing"}))
    assert not hooks.match(ok.model_copy(update={"severity": Severity.INFO}))
    assert not hooks.match(ok.model_copy(update={"tags": {"team": "db"}}))


def test_agent_url_and_webhook_targets(tmp_path: Path):
    text = HOOK.format(
        prompt="x",
        more=(
            "  - eventType: oom-kill\n    agentUrl: http://agent.local/a2a/\n    prompt: y\n"
            "  - eventType: pod-pending\n    webhook: {url: 'https://hooks.example/x', "
            "hmacSecretEnv: HOOK_KEY}\n    prompt: z\n"
        ),
    )
    hooks, _ = load_text(tmp_path, text)
    kinds = {r.event_type: (r.target.kind, r.target.label()) for r in hooks.rules}
    assert kinds == {
        "pod-restart": ("agent", "shop/k8s-agent"),
        "oom-kill": ("a2a", "http://agent.local/a2a/"),
        "pod-pending": ("webhook", "https://hooks.example/…"),  # paths often hold secrets
    }


def test_unknown_spec_field_is_rejected(tmp_path: Path):
    text = HOOK.format(prompt="x", more="").replace("spec:\n", "spec:\n  namespace: [a]\n")
    with pytest.raises(ConfigError, match=r"spec\.namespace: unknown field"):
        load_text(tmp_path, text)


CATALOG = EventCatalog.from_pairs(
    [("kubernetes", "pod-restart"), ("alertmanager", "disk-full"), ("plugin-only", "ping")],
    installed={"kubernetes", "alertmanager", "kafka"},
)


@pytest.mark.parametrize(
    ("sources", "event_type", "problem"),
    [
        ("", "pod-restart", None),
        ("  sources: []\n", "pod-restart", None),  # empty: the default, as in matching
        ("  sources: []\n", "disk-full", "'disk-full' never fires"),
        ("  sources: [kafka, alertmanager]\n", "disk-full", None),  # kafka: installed, no rows
        ("  sources: [plugin-only]\n", "ping", None),  # a mapping's source, not installed
        ("  sources: [kafka]\n", "disk-full", "for alertmanager only, not for this hook's source"),
        ("  sources: [alertmanger]\n", "disk-full", "did you mean 'alertmanager'?"),
        ("  sources: [zzz]\n", "pod-restrat", "did you mean 'pod-restart'?"),
    ],
)
def test_sources_and_event_types_are_checked_against_the_catalog(
    tmp_path: Path, sources: str, event_type: str, problem: str | None
):
    path = tmp_path / "hooks.yaml"
    path.write_text(
        "apiVersion: kagent.dev/v1alpha2\nkind: Hook\nmetadata: {name: h, namespace: shop}\n"
        f"spec:\n{sources}  eventConfigurations:\n  - eventType: {event_type}\n"
        "    agentRef: {name: a}\n    prompt: p\n"
    )
    if problem is None:
        assert [r.event_type for r in load_hooks([path], CATALOG).rules] == [event_type]
        return
    with pytest.raises(ConfigError) as info:
        load_hooks([path], CATALOG)
    assert any(problem in str(p) for p in info.value.problems), info.value
