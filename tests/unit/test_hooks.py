from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from khook_core.errors import ConfigError
from khook_core.event import Event, EventId, Resource, Severity
from khook_core.hooks import hook_files, load_hooks
from tests.conftest import COMPAT

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
