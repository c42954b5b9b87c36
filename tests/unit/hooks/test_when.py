"""``when:`` on a hook configuration: loaded and checked with the hook, applied in matching."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from khook_core.conditions import ConditionError
from khook_core.errors import ConfigError
from khook_core.event import Event, EventId, Resource, Severity
from khook_core.hooks import load_hooks

KNOWN = {"pod-restart", "oom-kill", "probe-failed"}

HOOK = """\
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {{name: web, namespace: shop}}
spec:
  eventConfigurations:
  - eventType: pod-restart
    agentRef: {{name: k8s-agent}}
    when: {when}
    prompt: "Pod {{{{.ResourceName}}}} restarted"
  - eventType: oom-kill
    agentRef: {{name: k8s-agent}}
    prompt: "{{{{.ResourceName}}}} ran out of memory"
"""


def write(tmp_path: Path, when: str) -> Path:
    path = tmp_path / "hooks.yaml"
    path.write_text(HOOK.format(when=when))
    return path


def event(**changes: object) -> Event:
    base = Event(
        id=EventId("e1"),
        source="kubernetes",
        type="pod-restart",
        reason="BackOff",
        resource=Resource(kind="Pod", name="web-0", namespace="shop"),
        timestamp=datetime(2026, 1, 5, tzinfo=UTC),
        count=3,
    )
    return base.model_copy(update=changes)


def test_a_configuration_matches_only_when_its_condition_holds(tmp_path: Path):
    hooks = load_hooks([write(tmp_path, '"event.count >= 3"')], KNOWN)
    assert [r.hook for r in hooks.match(event(count=3))] == ["shop/web"]
    assert hooks.match(event(count=2)) == []


def test_a_configuration_without_when_is_unchanged(tmp_path: Path):
    hooks = load_hooks([write(tmp_path, '"event.count >= 3"')], KNOWN)
    oom = hooks.rules[1]
    assert oom.when is None
    assert oom.matches(event(type="oom-kill", count=1))


@pytest.mark.parametrize(
    ("when", "problem"),
    [
        (
            "\"event.severty == 'error'\"",
            "hook shop/web: spec.eventConfigurations[0].when: unknown field event.severty "
            "(did you mean event.severity?) at column 6",
        ),
        (
            "\"event.count == 'three'\"",
            "hook shop/web: spec.eventConfigurations[0].when: found no matching overload for "
            "'_==_' applied to '(int, string)' at column 13",
        ),
        (
            '"event.tags.team"',
            "hook shop/web: spec.eventConfigurations[0].when: the condition gives string, not a "
            "bool",
        ),
    ],
)
def test_a_bad_condition_is_a_file_line_hook_when_problem(tmp_path: Path, when: str, problem: str):
    path = write(tmp_path, when)
    with pytest.raises(ConfigError) as info:
        load_hooks([path], KNOWN)
    assert [str(p) for p in info.value.problems] == [f"{path}:8: {problem}"]


def test_a_bad_condition_hides_no_other_problem_of_the_hook(tmp_path: Path):
    path = write(tmp_path, '"event.severty > 1"')
    path.write_text(path.read_text().replace("{{.ResourceName}} ran", "{{.Nope}} ran"))
    with pytest.raises(ConfigError) as info:
        load_hooks([path], KNOWN)
    messages = [p.message for p in info.value.problems]
    assert len(messages) == 2
    assert "when: unknown field event.severty" in messages[0]
    assert "prompt" in messages[1]


def test_a_condition_that_is_not_a_string_is_reported_by_the_schema(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"eventConfigurations\.0\.when|when"):
        load_hooks([write(tmp_path, "{count: 3}")], KNOWN)


def test_reading_the_severity_or_tags_asks_for_the_mapping_row_first(tmp_path: Path):
    hooks = load_hooks([write(tmp_path, "\"event.severity == 'error'\"")], KNOWN)
    assert hooks.rules[0].needs_mapping
    plain = load_hooks([write(tmp_path, '"event.count > 1"')], KNOWN)
    assert not plain.rules[0].needs_mapping


def test_a_condition_without_a_result_raises_condition_error_from_matching(tmp_path: Path):
    hooks = load_hooks([write(tmp_path, "\"event.tags.team == 'web'\"")], KNOWN)
    with pytest.raises(ConditionError, match="no such key: 'team'"):
        hooks.rules[0].matches(event(severity=Severity.ERROR))


def test_the_cheap_filters_decide_before_the_condition(tmp_path: Path):
    hooks = load_hooks([write(tmp_path, "\"event.tags.team == 'web'\"")], KNOWN)
    # Another namespace: the condition (which would fail on this event) is never asked.
    other = event(resource=Resource(kind="Pod", name="web-0", namespace="elsewhere"))
    assert hooks.rules[0].matches(other) is False


def test_the_cel_library_loads_only_for_hooks_that_have_a_condition(tmp_path: Path):
    plain = tmp_path / "plain.yaml"
    plain.write_text(
        HOOK.format(when='"event.count >= 3"').replace('    when: "event.count >= 3"\n', "")
    )
    conditioned = write(tmp_path, '"event.count >= 3"')
    code = (
        "import sys; from khook_core.hooks import load_hooks; "
        f"load_hooks([__import__('pathlib').Path(sys.argv[1])], {sorted(KNOWN)!r}); "
        "print('cel_expr_python' in sys.modules)"
    )

    def cel_loaded(path: Path) -> str:
        return subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
        ).stdout.strip()

    assert cel_loaded(plain) == "False"
    assert cel_loaded(conditioned) == "True"


def test_the_hooks_schema_documents_every_condition_variable():
    from khook_core.conditions.schema import EVENT_VARIABLES
    from khook_core.hooks import HookDocument

    schema = HookDocument.model_json_schema(by_alias=True)
    when = schema["$defs"]["EventConfiguration"]["properties"]["when"]
    assert set(when["x-cel-variables"]) == {v.name for v in EVENT_VARIABLES}
    assert when["x-cel-variables"]["event.count"].startswith("int: ")
    assert "CEL condition" in when["description"]
