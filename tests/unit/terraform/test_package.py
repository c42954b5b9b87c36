"""scripts/package.py builds reproducible, self-contained function archives."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.support.terraform import REPO, load_script

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
    assert requirements[0].startswith("# Runtime closure of khook-serverless")
    pins = dict(r.split("==") for r in requirements if not r.startswith("#"))
    assert list(pins) == sorted(pins), "pins must come in a stable order"
    # The whole closure, not only the five direct dependencies: what they pull in (flask and
    # werkzeug through functions-framework, grpcio through google-api-core[grpc], ...) is pinned
    # to the installed version too, so the same archive always installs the same code.
    for name in (
        "pydantic",
        "pyyaml",
        "functions-framework",
        "httpx",
        "google-cloud-firestore",
        "flask",
        "werkzeug",
        "cloudevents",
        "httpcore",
        "google-api-core",
        "grpcio",
        "protobuf",
    ):
        assert pins.get(name) == importlib.metadata.version(name), name
    assert "khook-serverless" not in pins
    assert "pytest" not in pins, "the dev extra is not a runtime extra"
    assert "kubernetes = khook_core.sources.kubernetes:KubernetesSource" in entry_points
    with zipfile.ZipFile(built["kafka"]) as archive:
        assert archive.read("requirements.txt").decode().endswith("# kafka\nfastavro==1.9.7\n")


def test_archives_carry_each_config_file_pre_parsed_beside_it(tree: Path) -> None:
    (tree / "config" / "hooks" / "b.yaml").write_text("at: 2026-01-05\n")  # no JSON form
    with zipfile.ZipFile(package.package(tree, tree / "build")["kafka"]) as archive:
        names = archive.namelist()
        form = json.loads(archive.read("config/hooks/.a.yaml.parsed.json"))
    assert "config/.event-mappings.yaml.parsed.json" in names
    assert "config/hooks/.b.yaml.parsed.json" not in names
    assert not [n for n in names if n.startswith("config/k8s")]
    assert form["sha256"] == hashlib.sha256(b"kind: Hook\n").hexdigest()
    assert form["documents"] == [{"m": [["kind", "Hook", 1, 1, "Hook"]], "l": 1}]


def test_archives_leave_out_the_cli_the_forwarder_and_the_local_stack(tree: Path) -> None:
    for part in ("khook_core/cli", "khook_core/forwarder", "khook_local"):
        (tree / part).mkdir(parents=True)
        (tree / part / "__init__.py").write_text('"""not run by any function"""\n')
    (tree / "khook_core" / "sources").mkdir()
    (tree / "khook_core" / "sources" / "cli.py").write_text('"""a module, kept"""\n')
    with zipfile.ZipFile(package.package(tree, tree / "build")["kafka"]) as archive:
        names = archive.namelist()
    assert "khook_core/sources/cli.py" in names
    assert [n for n in names if n.startswith(("khook_core/", "khook_local/"))] == [
        "khook_core/__init__.py",
        "khook_core/sources/cli.py",
    ]


# A function's cold start from its archive alone: khook_core comes from the archive (the
# current directory is first on the path, ahead of this checkout's editable install), then one
# Pub/Sub delivery runs the pipeline. Prints every khook module loaded and where from.
COLD_START = """
import base64, json, sys
import functions_framework
signature = sys.argv[1]
app = functions_framework.create_app("handle", "main.py", signature).test_client()
if len(sys.argv) > 2:
    data = base64.b64encode(sys.argv[2].encode()).decode()
    body = {"message": {"data": data, "messageId": "1"}, "subscription": "projects/p/subs/s"}
    assert app.post("/", json=body).status_code == 200
khook = ("khook_core", "khook_local")
print(json.dumps({name: getattr(module, "__file__", None) or "" for name, module
                  in sys.modules.items() if name.partition(".")[0] in khook}))
"""
SIGNATURES = {"alertmanager": "http", "webhook": "http", "console": "http"}
"""Every other function takes a CloudEvent."""


@pytest.fixture(scope="module")
def real_archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """This repository's archives, each unpacked into its own directory."""
    out = tmp_path_factory.mktemp("archives")
    unpacked: dict[str, Path] = {}
    for name, archive in package.package(REPO, out / "zip").items():
        unpacked[name] = out / name
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(unpacked[name])
    return unpacked


@pytest.mark.parametrize("name", [d.name for d in package.function_dirs(REPO / "functions")])
def test_every_function_starts_from_its_archive_without_the_parts_left_out(
    real_archives: dict[str, Path], name: str
) -> None:
    root = real_archives[name]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("KHOOK_")}
    env |= {
        "KHOOK_CONFIG_DIR": str(root / "config"),
        "KHOOK_STATE": "memory",
        "KHOOK_DISPATCH": "dry-run",
        "KHOOK_LOG_LEVEL": "WARNING",
    }
    args = [SIGNATURES.get(name, "cloudevent")]
    if name == "kubernetes":
        samples = REPO / "config" / "samples" / "kubernetes" / "events.jsonl"
        args.append(samples.read_text(encoding="utf-8").splitlines()[0])
    done = subprocess.run(
        [sys.executable, "-c", COLD_START, *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    loaded: dict[str, str] = json.loads(done.stdout.splitlines()[-1])
    # The console reads the store, the task receiver writes tracked tasks; every other function
    # runs events through the pipeline.
    serves = {"console": "khook_core.console.api", "tasks": "khook_core.tracking.notifications"}
    assert serves.get(name, "khook_core.pipeline") in loaded
    outside = sorted(m for m, path in loaded.items() if not Path(path).is_relative_to(root))
    assert outside == []
    left_out = [f"khook_core.{part}" for part in sorted(package.NOT_IN_FUNCTIONS)] + ["khook_local"]
    assert not [m for m in loaded if m.startswith(tuple(left_out))]


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
        "cel-expr-python",
        "croniter",
        "python-dateutil",
        "functions-framework",
        "httpx",
        "google-cloud-firestore",
        "opentelemetry-exporter-gcp-trace",
        "opentelemetry-exporter-gcp-monitoring",
        "opentelemetry-api",
        "opentelemetry-sdk",
    ]
    assert "kubernetes" not in names


def test_package_copes_with_a_missing_functions_directory(tmp_path: Path) -> None:
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    with pytest.raises(package.PackagingError, match="no functions"):
        package.package(tmp_path, tmp_path / "build")


# --- the runtime closure, on fake installed distributions --------------------------------------


class FakeDistribution(importlib.metadata.Distribution):
    def __init__(self, name: str, version: str, requires: Sequence[str]) -> None:
        self._metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
            f"Requires-Dist: {r}\n" for r in requires
        )

    def read_text(self, filename: str) -> str | None:
        return self._metadata if filename == "METADATA" else None

    def locate_file(self, path: object) -> Path:
        raise NotImplementedError


def installed(
    packages: Mapping[str, tuple[str, Sequence[str]]],
) -> Callable[[str], importlib.metadata.Distribution]:
    def distribution(name: str) -> importlib.metadata.Distribution:
        key = name.lower().replace("_", "-")
        if key not in packages:
            raise importlib.metadata.PackageNotFoundError(name)
        version, requires = packages[key]
        return FakeDistribution(key, version, requires)

    return distribution


def closure(roots: Sequence[str], packages: Mapping[str, tuple[str, Sequence[str]]]) -> object:
    return package.runtime_closure(
        [Requirement(r) for r in roots], own="khook-serverless", distribution=installed(packages)
    )


def test_closure_follows_requested_extras_and_evaluates_markers_for_the_runtime() -> None:
    packages = {
        "api-core": (
            "2.0",
            [
                "protobuf>=4",
                'grpcio>=1.59; extra == "grpc"',
                'grpcio>=1.75; python_version >= "3.14" and extra == "grpc"',
                'aiohttp; extra == "async"',
            ],
        ),
        "firestore": ("2.1", ["api-core[grpc]>=2"]),
        "framework": (
            "3.0",
            [
                "flask>=2",
                'gunicorn; platform_system != "Windows"',
                'colorama; sys_platform == "win32"',
                'exceptiongroup; python_version < "3.11"',
                'uvloop; platform_machine == "x86_64"',
            ],
        ),
        "flask": ("3.1", ["werkzeug>=3", "framework"]),  # a cycle must terminate
        "werkzeug": ("3.1.3", []),
        "protobuf": ("6.0", []),
        "grpcio": ("1.70", []),
        "gunicorn": ("23.0", []),
        "uvloop": ("0.21", []),
        # Installed here (the build machine) but not needed on the runtime:
        "colorama": ("0.4", []),
        "exceptiongroup": ("1.2", []),
        "aiohttp": ("3.9", []),
    }
    assert closure(["firestore>=2", "framework"], packages) == {
        "api-core": "2.0",
        "firestore": "2.1",
        "flask": "3.1",
        "framework": "3.0",
        "grpcio": "1.70",
        "gunicorn": "23.0",
        "protobuf": "6.0",
        "uvloop": "0.21",
        "werkzeug": "3.1.3",
    }


def test_closure_takes_an_extra_asked_for_after_the_base_was_walked() -> None:
    packages = {
        "b": ("1", ['c; extra == "x"']),
        "c": ("1", []),
        "first": ("1", ["b"]),
        "second": ("1", ["b[x]"]),
    }
    assert closure(["first", "second"], packages) == {
        "b": "1",
        "c": "1",
        "first": "1",
        "second": "1",
    }


def test_closure_leaves_out_the_project_itself() -> None:
    packages = {"plugin": ("1", ["khook-serverless>=0.1"])}
    assert closure(["plugin"], packages) == {"plugin": "1"}


def test_closure_refuses_what_is_missing_or_out_of_range() -> None:
    packages = {"top": ("1", ["dep>=2"]), "dep": ("1.5", [])}
    with pytest.raises(package.PackagingError, match=r"dep==1\.5 does not satisfy dep>=2"):
        closure(["top"], packages)
    with pytest.raises(package.PackagingError, match=r"gone \(required by top==1\)"):
        closure(["top"], {"top": ("1", ["gone"])})


def test_root_requirements_expand_self_references_and_skip_other_extras() -> None:
    pyproject = {
        "project": {
            "name": "khook-serverless",
            "dependencies": ["pydantic>=2", 'tomli; python_version < "3.11"'],
            "optional-dependencies": {
                "functions": ["khook-serverless[dispatch]", "functions-framework"],
                "dispatch": ["httpx"],
                "firestore": ["google-cloud-firestore"],
                "dev": ["pytest"],
            },
        }
    }
    assert package.requirement_names(pyproject) == [
        "pydantic",
        "functions-framework",
        "google-cloud-firestore",
        "httpx",
    ]


def test_requirements_text_is_sorted_with_its_header() -> None:
    text = package.pinned_requirements({"b": "2", "a": "1"}, "# header\n")
    assert text == "# header\na==1\nb==2\n"


def test_the_benchmarks_deployed_venv_installs_what_every_archive_installs(tree: Path) -> None:
    """The cold-start benchmarks' budgets are checked in that venv: it must be a deployed one."""
    spec = importlib.util.spec_from_file_location("_deployed", REPO / "benchmarks/_deployed.py")
    assert spec is not None
    assert spec.loader is not None
    deployed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(deployed)
    wanted = set(deployed.requirements(tree).splitlines())
    for archive_path in package.package(tree, tree / "build" / "functions").values():
        with zipfile.ZipFile(archive_path) as archive:
            installed = archive.read("requirements.txt").decode().splitlines()
        assert set(installed) <= wanted, archive_path.name
    assert "fastavro==1.9.7" in wanted  # functions/kafka/requirements.txt
    assert not any(line.startswith(("pytest", "khook")) for line in wanted)  # no dev, no editable
