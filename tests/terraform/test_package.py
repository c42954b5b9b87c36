"""scripts/package.py builds reproducible, self-contained function archives."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from tests.terraform.conftest import REPO, load_script

package = load_script("package")

PYPROJECT = """\
[project]
name = "khook-serverless"
version = "0.1.0"
dependencies = ["pydantic>=2.7,<3", "pyyaml>=6.0"]
[project.optional-dependencies]
functions = ["functions-framework>=3.8,<4", "httpx>=0.27,<1"]
firestore = ["google-cloud-firestore>=2.16,<3"]
dev = ["khook-serverless[functions]", "pytest>=8"]
[project.entry-points."khook.sources"]
kubernetes = "khook_core.sources.kubernetes:KubernetesSource"
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "khook_core" / "__pycache__").mkdir(parents=True)
    (root / "khook_core" / "__init__.py").write_text('"""core"""\n')
    (root / "khook_core" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (root / "config" / "hooks").mkdir(parents=True)
    (root / "config" / "k8s").mkdir()
    (root / "config" / "event-mappings.yaml").write_text("mappings: []\n")
    (root / "config" / "hooks" / "a.yaml").write_text("kind: Hook\n")
    (root / "config" / "k8s" / "deployment.yaml").write_text("kind: Deployment\n")
    for name in ("kubernetes", "kafka"):
        (root / "functions" / name).mkdir(parents=True)
        (root / "functions" / name / "main.py").write_text("def handle(event):\n    return None\n")
    (root / "functions" / "kafka" / "requirements.txt").write_text("fastavro==1.9.7\n")
    (root / "functions" / "README.md").write_text("not a function directory\n")
    (root / "pyproject.toml").write_text(PYPROJECT)
    return root


def test_archives_hold_function_core_config_and_pinned_requirements(tree: Path) -> None:
    built = package.package(tree, tree / "build" / "functions")
    assert sorted(built) == ["kafka", "kubernetes"]
    with zipfile.ZipFile(built["kubernetes"]) as archive:
        names = archive.namelist()
        requirements = archive.read("requirements.txt").decode().splitlines()
        entry_points = archive.read("khook_serverless-0.1.0.dist-info/entry_points.txt").decode()
    assert names == sorted(names)
    assert {
        "main.py",
        "khook_core/__init__.py",
        "config/event-mappings.yaml",
        "config/hooks/a.yaml",
    } <= set(names)
    assert not [
        n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith("config/k8s")
    ]
    assert [r.split("==")[0] for r in requirements] == [
        "pydantic",
        "pyyaml",
        "functions-framework",
        "httpx",
        "google-cloud-firestore",
    ]
    assert all("==" in r for r in requirements)
    assert "kubernetes = khook_core.sources.kubernetes:KubernetesSource" in entry_points
    with zipfile.ZipFile(built["kafka"]) as archive:
        assert archive.read("requirements.txt").decode().endswith("# kafka\nfastavro==1.9.7\n")


def test_unchanged_tree_gives_identical_archives(tree: Path) -> None:
    first = package.package(tree, tree / "a")["kubernetes"].read_bytes()
    (tree / "khook_core" / "__init__.py").touch()  # a new mtime alone must not change the bytes
    second = package.package(tree, tree / "b")["kubernetes"].read_bytes()
    assert first == second
    (tree / "config" / "event-mappings.yaml").write_text("mappings: [x]\n")
    assert package.package(tree, tree / "c")["kubernetes"].read_bytes() != first


def test_unknown_function_name_is_an_error(tree: Path) -> None:
    with pytest.raises(package.PackagingError, match=r"no functions/<name>/main\.py for: nope"):
        package.package(tree, tree / "build", ["nope"])


def test_repository_requirements_cover_the_runtime_extras() -> None:
    import tomllib

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    names = package.requirement_names(pyproject)
    assert names == [
        "pydantic",
        "pyyaml",
        "functions-framework",
        "httpx",
        "google-cloud-firestore",
    ]
    assert "kubernetes" not in names


def test_package_copes_with_a_missing_functions_directory(tmp_path: Path) -> None:
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    with pytest.raises(package.PackagingError, match="no functions"):
        package.package(tmp_path, tmp_path / "build")
