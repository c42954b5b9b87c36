"""Parsed Terraform configuration and the scripts/ modules, shared by the terraform tests."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import hcl2
import pytest
from hcl2.utils import SerializationOptions

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
SCRIPTS = REPO / "scripts"
HCL_OPTIONS = SerializationOptions(
    strip_string_quotes=True, explicit_blocks=False, with_comments=False
)
IN_CI = os.environ.get("CI", "").lower() == "true"


def load_script(name: str) -> ModuleType:
    """Import ``scripts/<name>.py`` (scripts/ is not a package; tf_check imports tf_schema)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def skip_or_fail(reason: str) -> NoReturn:
    """Skip locally; in CI (CI=true) a missing prerequisite is a failure, never a silent skip."""
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def run_terraform(work: Path, *args: str, stdin: str | None = None) -> str:
    """Run the terraform CLI in ``work`` (no provider, no user CLI config); its stdout.

    Skipped without terraform locally, failed in CI; a non-zero exit fails with its output.
    """
    terraform = shutil.which("terraform")
    if terraform is None:
        skip_or_fail(
            "terraform is not installed (https://developer.hashicorp.com/terraform/install)"
        )
    env = {**os.environ, "TF_CLI_CONFIG_FILE": os.devnull, "TF_IN_AUTOMATION": "1"}
    result = subprocess.run(
        [terraform, *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=work,
        env=env,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # A tfvars entry no variable declares is only a warning to Terraform; here it fails.
    assert "undeclared variable" not in output, output
    return result.stdout


@dataclass
class TerraformConfig:
    """Every block of terraform/*.tf, merged across files."""

    resources: dict[str, dict[str, Mapping[str, Any]]] = field(default_factory=dict)
    data: dict[str, dict[str, Mapping[str, Any]]] = field(default_factory=dict)
    variables: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    moved: list[Mapping[str, str]] = field(default_factory=list)

    def of_type(self, type_name: str) -> dict[str, Mapping[str, Any]]:
        return self.resources.get(type_name, {})

    def all_resources(self) -> list[tuple[str, str, Mapping[str, Any]]]:
        return [(t, n, body) for t, named in self.resources.items() for n, body in named.items()]

    def default(self, variable: str) -> Any:
        return self.variables[variable].get("default")

    def render(self, template: str, each_key: str | None = None) -> str:
        """Substitute ``${var.X}`` (defaults) and ``${each.key}``; fail on anything else."""

        def substitute(match: re.Match[str]) -> str:
            expr = match.group(1)
            if expr == "each.key" and each_key is not None:
                return each_key
            if expr.startswith("var."):
                return str(self.default(expr.removeprefix("var.")))
            raise AssertionError(f"cannot evaluate ${{{expr}}} in {template!r}")

        return re.sub(r"\$\{([^}]*)\}", substitute, template)

    def local_ref(self, value: Any) -> Any:
        """The value of ``${local.NAME}``; other values are returned unchanged."""
        if isinstance(value, str):
            match = re.fullmatch(r"\$\{local\.(\w+)\}", value)
            if match:
                return self.locals[match.group(1)]
        return value


def parse_terraform(directory: Path) -> TerraformConfig:
    config = TerraformConfig()
    for path in sorted(directory.glob("*.tf")):
        with path.open(encoding="utf-8") as file:
            doc = hcl2.load(file, serialization_options=HCL_OPTIONS)
        for kind, target in (("resource", config.resources), ("data", config.data)):
            for entry in doc.get(kind, []):
                for type_name, named in entry.items():
                    target.setdefault(type_name, {}).update(named)
        for entry in doc.get("variable", []):
            config.variables.update(entry)
        for entry in doc.get("locals", []):
            config.locals.update(entry)
        config.moved.extend(doc.get("moved", []))
    return config


@pytest.fixture(scope="session")
def tf() -> TerraformConfig:
    return parse_terraform(TERRAFORM)


def first(block: Any) -> Mapping[str, Any]:
    """The single instance of a nested block (python-hcl2 gives a list of dicts)."""
    if isinstance(block, list):
        assert len(block) == 1, f"expected one block, found {len(block)}"
        block = block[0]
    assert isinstance(block, Mapping), f"expected a block, found {block!r}"
    return block
