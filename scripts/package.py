"""Build the deployable source archive of every function: ``build/functions/<name>.zip``.

Each archive holds, at its root, what Cloud Run functions' Python buildpack expects:

- the files of ``functions/<name>/`` (``main.py`` with the ``handle`` entry point),
- the ``khook_core`` package without the parts no function runs (``cli/``, the ``khook``
  command, and ``forwarder/``, the in-cluster watcher, whose kubernetes and Pub/Sub clients are
  not in the archive's requirements anyway); the local stack is its own package, ``khook_local``,
  and is never packed,
- ``config/`` (without ``config/k8s``, the forwarder's manifests, so changing them does not
  redeploy every function), and beside each of its YAML files that form of it pre-parsed to JSON
  (``.<name>.parsed.json``, ``khook_core.preparsed``), so a function starts without PyYAML (it
  still parses a YAML file whose pre-parsed form does not match it),
- ``requirements.txt``: the whole runtime closure of ``pyproject.toml`` (core plus the
  ``functions``, ``firestore`` and ``cloud`` extras, and everything they require in turn, as the
  Cloud Run functions runtime, Python 3.11 on Linux x86_64, would install it) pinned to the versions
  installed here, followed by ``functions/<name>/requirements.txt`` when a function needs more.
  Pinning only the direct dependencies would let flask, grpcio, protobuf and the rest float, so
  two builds of the same archive (same MD5, same object name) could install different code,
- ``khook_serverless-<version>.dist-info/`` with the entry points, because ``khook_core`` is not
  pip-installed in the function and plugins are discovered through ``importlib.metadata``.

Archives are deterministic (sorted entries, fixed timestamps and modes, no compression), so an
unchanged tree gives the same MD5 and Terraform, which names the uploaded object after that MD5,
does not redeploy the function.

Usage: ``python scripts/package.py [--out DIR] [NAME ...]``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import io
import os
import re
import sys
import tomllib
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from khook_core import preparsed

ROOT = Path(__file__).resolve().parents[1]
# Extras of pyproject.toml whose dependencies every function installs.
RUNTIME_EXTRAS = ("functions", "firestore", "cloud")
SKIPPED_DIRS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
SKIPPED_SUFFIXES = frozenset({".pyc", ".pyo"})
SKIPPED_CONFIG = frozenset({"k8s"})
# Sub-packages of khook_core that no function imports (import-linter's contracts in
# pyproject.toml keep it so); an archive that held them would only be larger.
NOT_IN_FUNCTIONS = frozenset({"cli", "forwarder"})
# The earliest time a zip entry can carry; any fixed value makes archives reproducible.
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # regular file, rw-r--r--
# Environment markers are evaluated for the runtime the archive is installed in (python311 on
# Cloud Run functions), not for the machine that builds it. The patch level is not pinned by
# the platform; no marker in the closure distinguishes 3.11 patch releases.
TARGET_ENVIRONMENT: Mapping[str, str] = {
    "implementation_name": "cpython",
    "implementation_version": "3.11.0",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_release": "",
    "platform_system": "Linux",
    "platform_version": "",
    "python_full_version": "3.11.0",
    "python_version": "3.11",
    "sys_platform": "linux",
}
REQUIREMENTS_HEADER = (
    "# Runtime closure of {project} (core + {extras}) for Python 3.11 on Linux x86_64,\n"
    "# pinned to the build virtualenv by scripts/package.py. Do not edit: run `make package`.\n"
)


class PackagingError(RuntimeError):
    """The tree cannot be packaged; the message says what is missing."""


def function_dirs(functions_dir: Path) -> list[Path]:
    """Every ``functions/<name>/`` directory that has a ``main.py``, sorted by name."""
    if not functions_dir.is_dir():
        return []
    return sorted(p for p in functions_dir.iterdir() if (p / "main.py").is_file())


def root_requirements(pyproject: Mapping[str, Any]) -> list[Requirement]:
    """The core dependencies and the runtime extras, without the project itself.

    A self-reference such as ``khook-serverless[functions]`` inside a runtime extra stands for
    the requirements of the extras it names, which are added in its place.
    """
    project = pyproject["project"]
    own = canonicalize_name(project["name"])
    optional = {
        canonicalize_name(extra): list(specs)
        for extra, specs in project.get("optional-dependencies", {}).items()
    }
    specs = list(project.get("dependencies", []))
    expanded: set[str] = set()
    extras = [canonicalize_name(e) for e in RUNTIME_EXTRAS]
    roots: list[Requirement] = []
    index = 0
    while True:
        for extra in extras:
            if extra not in expanded:
                expanded.add(extra)
                specs.extend(optional.get(extra, []))
        extras = []
        if index == len(specs):
            return roots
        requirement = _parse(specs[index], f"pyproject.toml of {project['name']}")
        index += 1
        if requirement.marker is not None and not _applies(requirement.marker, [""]):
            continue
        if canonicalize_name(requirement.name) == own:
            extras = [canonicalize_name(e) for e in requirement.extras]
        else:
            roots.append(requirement)


def requirement_names(pyproject: Mapping[str, Any]) -> list[str]:
    """Distribution names of the direct runtime requirements, first mention first."""
    names: dict[NormalizedName, str] = {}
    for requirement in root_requirements(pyproject):
        names.setdefault(canonicalize_name(requirement.name), requirement.name)
    return list(names.values())


def runtime_closure(
    roots: Iterable[Requirement],
    own: str = "",
    distribution: Callable[[str], importlib.metadata.Distribution] = (
        importlib.metadata.distribution
    ),
) -> dict[str, str]:
    """Every distribution the roots need on the target runtime -> its installed version.

    Walks ``Requires-Dist`` of the installed distributions, following the extras each
    requirement asks for and keeping only requirements whose marker holds on
    :data:`TARGET_ENVIRONMENT`. An installed version outside a requirement's specifier is an
    error: pip would refuse the pinned file in Cloud Build anyway.
    """
    own_name = canonicalize_name(own) if own else None
    queue: list[tuple[Requirement, str]] = [(r, "pyproject.toml") for r in roots]
    dists: dict[NormalizedName, importlib.metadata.Distribution] = {}
    # (distribution, extra) pairs whose requirements were queued; "" is the base set.
    walked: set[tuple[NormalizedName, str]] = set()
    while queue:
        requirement, wanted_by = queue.pop(0)
        name = canonicalize_name(requirement.name)
        if name == own_name:
            continue
        if name not in dists:
            try:
                dists[name] = distribution(requirement.name)
            except importlib.metadata.PackageNotFoundError as exc:
                raise PackagingError(
                    f"{requirement.name} (required by {wanted_by}) is not installed in "
                    f"{sys.executable}; run `make install` first"
                ) from exc
        dist = dists[name]
        if not requirement.specifier.contains(dist.version, prereleases=True):
            raise PackagingError(
                f"installed {name}=={dist.version} does not satisfy {requirement} "
                f"(required by {wanted_by}); run `make install` again"
            )
        extras = sorted(
            {"", *(canonicalize_name(e) for e in requirement.extras)}
            - {extra for walked_name, extra in walked if walked_name == name}
        )
        if not extras:
            continue
        walked.update((name, extra) for extra in extras)
        for spec in dist.requires or []:
            child = _parse(spec, f"{name}=={dist.version}")
            if child.marker is None or _applies(child.marker, extras):
                queue.append((child, f"{name}=={dist.version}"))
    return {name: dist.version for name, dist in dists.items()}


def pinned_requirements(pins: Mapping[str, str], header: str = "") -> str:
    """``name==version`` lines sorted by name, after an optional comment header."""
    lines = [f"{name}=={version}" for name, version in sorted(pins.items())]
    return header + "\n".join(lines) + "\n"


def runtime_requirements(pyproject: Mapping[str, Any]) -> str:
    """``requirements.txt`` shared by every function: the pinned runtime closure."""
    project = pyproject["project"]
    closure = runtime_closure(root_requirements(pyproject), own=project["name"])
    header = REQUIREMENTS_HEADER.format(project=project["name"], extras=", ".join(RUNTIME_EXTRAS))
    return pinned_requirements(closure, header)


def dist_info(pyproject: Mapping[str, Any]) -> dict[str, bytes]:
    """Minimal ``.dist-info`` files that make the entry points discoverable."""
    project = pyproject["project"]
    base = f"{_normalize(project['name']).replace('-', '_')}-{project['version']}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    groups = project.get("entry-points", {})
    entry_points = "".join(
        f"[{group}]\n" + "".join(f"{n} = {ref}\n" for n, ref in sorted(points.items())) + "\n"
        for group, points in sorted(groups.items())
    )
    return {
        f"{base}/METADATA": metadata.encode(),
        f"{base}/entry_points.txt": entry_points.encode(),
        f"{base}/top_level.txt": b"khook_core\n",
    }


def archive_members(
    root: Path, function_dir: Path, common: Mapping[str, bytes]
) -> dict[str, bytes]:
    """Archive path -> content for one function."""
    members = dict(common)
    for path in _files(function_dir):
        members[path.relative_to(function_dir).as_posix()] = path.read_bytes()
    for path in _files(root / "khook_core", skip=NOT_IN_FUNCTIONS):
        members[path.relative_to(root).as_posix()] = path.read_bytes()
    for path in _files(root / "config", skip=SKIPPED_CONFIG):
        members[path.relative_to(root).as_posix()] = path.read_bytes()
    for path, form in preparsed_forms(root / "config").items():
        members[path.relative_to(root).as_posix()] = form
    extra = function_dir / "requirements.txt"
    requirements = common["requirements.txt"]
    if extra.is_file():
        requirements += b"# " + function_dir.name.encode() + b"\n" + extra.read_bytes()
    members["requirements.txt"] = requirements
    return members


def preparsed_forms(config: Path) -> dict[Path, bytes]:
    """Beside each YAML file of ``config`` (not ``k8s/``), its pre-parsed form: path -> content.

    A file that does not parse (or holds a value JSON cannot carry) gets none; the function
    parses it, and reports its problems, at start.
    """
    forms: dict[Path, bytes] = {}
    for path in _files(config, skip=SKIPPED_CONFIG):
        if path.suffix in (".yaml", ".yml"):
            form = preparsed.encode(path.read_text(encoding="utf-8"))
            if form is not None:
                forms[preparsed.sidecar(path)] = form.encode()
    return forms


def write_zip(path: Path, members: Mapping[str, bytes]) -> str:
    """Write a reproducible zip atomically; return its MD5 (hex)."""
    buffer = io.BytesIO()
    # Stored, not deflated: compressed bytes depend on the zlib build, and the MD5 must not.
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.create_system = 3  # Unix, so external_attr means the same everywhere
            info.external_attr = FILE_MODE << 16
            archive.writestr(info, members[name])
    data = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".zip.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def package(root: Path, out_dir: Path, names: Sequence[str] = ()) -> dict[str, Path]:
    """Build the archives of ``names`` (default: every function); return name -> archive."""
    dirs = function_dirs(root / "functions")
    if names:
        unknown = sorted(set(names) - {d.name for d in dirs})
        if unknown:
            raise PackagingError(f"no functions/<name>/main.py for: {', '.join(unknown)}")
        dirs = [d for d in dirs if d.name in names]
    if not dirs:
        raise PackagingError(f"no functions/<name>/main.py under {root / 'functions'}")
    if not (root / "khook_core").is_dir():
        raise PackagingError(f"no khook_core package under {root}")
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    common = {"requirements.txt": runtime_requirements(pyproject).encode()}
    common.update(dist_info(pyproject))
    built: dict[str, Path] = {}
    for function_dir in dirs:
        archive = out_dir / f"{function_dir.name}.zip"
        digest = write_zip(archive, archive_members(root, function_dir, common))
        print(f"{archive.relative_to(root) if archive.is_relative_to(root) else archive}  {digest}")
        built[function_dir.name] = archive
    return built


def _files(directory: Path, skip: frozenset[str] = frozenset()) -> Iterator[Path]:
    if not directory.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(directory):
        top = Path(dirpath) == directory
        dirnames[:] = sorted(
            d for d in dirnames if d not in SKIPPED_DIRS and not (top and d in skip)
        )
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            if path.suffix not in SKIPPED_SUFFIXES and filename != ".DS_Store":
                yield path


def _parse(spec: str, source: str) -> Requirement:
    try:
        return Requirement(spec)
    except InvalidRequirement as exc:
        raise PackagingError(f"invalid requirement {spec!r} in {source}: {exc}") from exc


def _applies(marker: Marker, extras: Iterable[str]) -> bool:
    """Whether ``marker`` holds on the target runtime for any of ``extras`` ("" = none)."""
    return any(marker.evaluate({**TARGET_ENVIRONMENT, "extra": extra}) for extra in extras)


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="functions to package (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "functions")
    args = parser.parse_args(argv)
    try:
        package(ROOT, args.out, args.names)
    except PackagingError as exc:
        print(f"package: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
