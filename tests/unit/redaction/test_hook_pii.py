"""A Hook's ``spec.redact.pii``: the personal data it names is masked in everything that
Hook's runs send and record (prompt, A2A request, audit record), and only there; other hooks
of the same event see it as the source left it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from khook_core.dispatch.dryrun import DryRunDispatcher
from khook_core.errors import ConfigError
from khook_core.hooks import load_hooks
from khook_core.pipeline import run_pipeline
from khook_core.runtime import Clock, Runtime
from khook_core.settings import Settings
from khook_core.state.memory import MemoryStateStore
from tests.support.configdir import make_config
from tests.support.k8s_events import core_event
from tests.unit.pipeline.test_pipeline import NOW

HOOKS = """\
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {name: support, namespace: shop}
spec:
  redact: {pii: [email, ip]}
  eventConfigurations:
  - eventType: pod-restart
    agentRef: {name: support-agent}
    prompt: "Restart of {{.ResourceName}}: {{.EventMessage}}"
---
apiVersion: kagent.dev/v1alpha2
kind: Hook
metadata: {name: ops, namespace: shop}
spec:
  eventConfigurations:
  - eventType: pod-restart
    agentRef: {name: ops-agent}
    prompt: "Restart of {{.ResourceName}}: {{.EventMessage}}"
"""
MESSAGE = "Back-off restarting app: login of alice@example.com from 10.1.2.3 failed"


def test_a_hook_masks_the_personal_data_it_names_and_only_for_its_own_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="khook_core.redaction.redactor")
    dispatcher = DryRunDispatcher()
    runtime = Runtime.build(
        Settings(config_dir=make_config(tmp_path, HOOKS), state="memory", dispatch="dry-run"),
        clock=Clock(NOW),
        store=MemoryStateStore(),
        dispatcher=dispatcher,
    )
    try:
        decisions = run_pipeline("kubernetes", core_event(message=MESSAGE), {}, runtime=runtime)
        by_hook = {d.hook: d for d in decisions}
        assert {d.decision for d in decisions} == {"dispatched"}

        support = by_hook["shop/support"]
        assert support.prompt is not None
        assert "alice@example.com" not in support.prompt
        assert "10.1.2.3" not in support.prompt
        assert "[redacted:email:" in support.prompt
        assert "[redacted:ip:" in support.prompt
        [request] = [r for r in dispatcher.requests if r.hook == "shop/support"]
        assert "alice@example.com" not in request.prompt
        assert "alice@example.com" not in request.event.model_dump_json()
        [record] = [f for f in runtime.store.firings() if f.hook == "shop/support"]
        assert "alice@example.com" not in repr(record)

        ops = by_hook["shop/ops"]
        assert ops.prompt is not None
        assert "alice@example.com" in ops.prompt  # no rule of its own: left as it came
        assert runtime.redactor.counts == {("kubernetes", "email"): 1, ("kubernetes", "ip"): 1}
        assert "for hook shop/support" in caplog.text
        assert "alice@example.com" not in caplog.text
    finally:
        runtime.close()


def test_an_unknown_personal_data_kind_is_a_problem_naming_the_hook(tmp_path: Path) -> None:
    path = tmp_path / "hooks.yaml"
    path.write_text(HOOKS.replace("[email, ip]", "[email, passport]"))
    with pytest.raises(ConfigError) as info:
        load_hooks([path], None)
    text = "\n".join(str(p) for p in info.value.problems)
    assert "hook shop/support" in text
    assert "spec.redact.pii" in text
