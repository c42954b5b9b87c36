"""Build the deployable source archive of every function: ``build/functions/<name>.zip``.

Each archive holds, at its root, what Cloud Run functions' Python buildpack expects:

- the files of ``functions/<name>/`` (``main.py`` with the ``handle`` entry point),
- the ``khook_core`` package and ``config/`` (without ``config/k8s``, the forwarder's manifests,
  so changing them does not redeploy every function),
- ``requirements.txt``: the runtime dependencies of ``pyproject.toml`` (core plus the
  ``functions`` and ``firestore`` extras) pinned to the versions installed here, followed by
  ``functions/<name>/requirements.txt`` when a function needs more,
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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Extras of pyproject.toml whose dependencies every function installs.
RUNTIME_EXTRAS = ("functions", "firestore")
SKIPPED_DIRS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
SKIPPED_SUFFIXES = frozenset({".pyc", ".pyo"})
SKIPPED_CONFIG = frozenset({"k8s"})
# The earliest time a zip entry can carry; any fixed value makes archives reproducible.
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # regular file, rw-r--r--


class PackagingError(RuntimeError):
    """The tree cannot be packaged; the message says what is missing."""


def function_dirs(functions_dir: Path) -> list[Path]:
    """Every ``functions/<name>/`` directory that has a ``main.py``, sorted by name."""
    if not functions_dir.is_dir():
        return []
    return sorted(p for p in functions_dir.iterdir() if (p / "main.py").is_file())


def requirement_names(pyproject: Mapping[str, Any]) -> list[str]:
    """Distribution names of the core dependencies and the runtime extras, first mention first."""
    project = pyproject["project"]
    specs = list(project.get("dependencies", []))
    for extra in RUNTIME_EXTRAS:
        specs.extend(project.get("optional-dependencies", {}).get(extra, []))
    own = _normalize(project["name"])
    names: dict[str, str] = {}
    for spec in specs:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
        if match and _normalize(match.group(1)) != own:
            names.setdefault(_normalize(match.group(1)), match.group(1))
    return list(names.values())


def pinned_requirements(names: Iterable[str]) -> str:
    """``name==version`` lines for the versions installed in this interpreter."""
    lines = []
    for name in names:
        try:
            lines.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError as exc:
            raise PackagingError(
                f"{name} is not installed in {sys.executable}; run `make install` first"
            ) from exc
    return "\n".join(lines) + "\n"


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
    for path in _files(root / "khook_core"):
        members[path.relative_to(root).as_posix()] = path.read_bytes()
    for path in _files(root / "config", skip=SKIPPED_CONFIG):
        members[path.relative_to(root).as_posix()] = path.read_bytes()
    extra = function_dir / "requirements.txt"
    requirements = common["requirements.txt"]
    if extra.is_file():
        requirements += b"# " + function_dir.name.encode() + b"\n" + extra.read_bytes()
    members["requirements.txt"] = requirements
    return members


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
    common = {"requirements.txt": pinned_requirements(requirement_names(pyproject)).encode()}
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
