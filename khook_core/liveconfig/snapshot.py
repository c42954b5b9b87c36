"""A configuration snapshot's files: read from a directory, loaded with the one loader.

A snapshot carries the text of ``event-mappings.yaml``, ``plugins.yaml``, ``budgets.yaml`` and
every hook file, by path relative to the config directory. Loading writes them to a private
temporary directory and runs ``runtime.load_config`` on it, so a snapshot is validated exactly
as ``khook validate`` validates the directory; problems name the snapshot and the file.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path, PurePosixPath

from khook_core import runtime
from khook_core.errors import ConfigError, PluginLoadError, Problem
from khook_core.event import utcnow
from khook_core.hooks import hook_files

TOP_FILES = (runtime.MAPPINGS_FILE, runtime.PLUGINS_FILE, runtime.BUDGETS_FILE)
"""The files of the config directory a snapshot carries besides ``hooks/``."""


def files_of(config_dir: Path) -> dict[str, str]:
    """The text of every configuration file under ``config_dir``, by relative POSIX path."""
    files: dict[str, str] = {}
    for name in TOP_FILES:
        path = config_dir / name
        if path.is_file():
            files[name] = path.read_text(encoding="utf-8")
    hooks = config_dir / runtime.HOOKS_DIR
    if hooks.is_dir():
        for path in hook_files(hooks):
            files[path.relative_to(config_dir).as_posix()] = path.read_text(encoding="utf-8")
    return files


def digest_of(files: Mapping[str, str]) -> str:
    """sha256 over the paths and texts, in path order: equal files, equal digest."""
    h = hashlib.sha256()
    for name in sorted(files):
        for part in (name, files[name]):
            data = part.encode("utf-8", "surrogatepass")
            h.update(len(data).to_bytes(8, "big"))
            h.update(data)
    return h.hexdigest()


def load_files(
    files: Mapping[str, str],
    *,
    label: str,
    version: str,
    clock: Callable[[], datetime] = utcnow,
    disabled_sources: frozenset[str] = frozenset(),
    check_sources: bool = False,
) -> runtime.Config:
    """Load a snapshot's files with the same loader as the config directory.

    Args:
        label: names the snapshot in problems (``snapshot v3``): ``label/hooks/x.yaml:4: …``.
        version: what ``Config.version`` records (and every firing's audit record with it).

    Raises:
        ConfigError: every problem, each naming ``label`` and the file.
    """
    with tempfile.TemporaryDirectory(prefix="khook-config-") as tmp:
        root = Path(tmp)
        for name, text in files.items():
            path = root / _safe_relative(name, label)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8", errors="surrogateescape")
        try:
            config = runtime.load_config(
                root, clock=clock, disabled_sources=disabled_sources, check_sources=check_sources
            )
        except ConfigError as exc:
            raise ConfigError([_relabel(p, tmp, label) for p in exc.problems]) from None
    config.version = version
    config.plugins.file = config.plugins.file.replace(tmp, label)
    config.notes = [_relabel(note, tmp, label) for note in config.notes]
    for name, error in list(config.sources.errors.items()):
        if error.file:
            config.sources.errors[name] = PluginLoadError(
                error.name, error.reason, file=error.file.replace(tmp, label), line=error.line
            )
    return config


def _safe_relative(name: str, label: str) -> PurePosixPath:
    """A snapshot's path, refused if it would leave the directory (absolute, or ``..``)."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ConfigError([Problem(f"{label}/{name}", None, "path outside the config directory")])
    return path


def _relabel(problem: Problem, tmp: str, label: str) -> Problem:
    return replace(problem, file=problem.file.replace(tmp, label))
