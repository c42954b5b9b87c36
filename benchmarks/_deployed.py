"""The "deployed" virtualenv: what a function's archive installs, for the cold-start benchmarks.

The development venv (``make install``) is not what Cloud Functions runs: it holds khook as an
editable install (a path finder that every process consults at start) and the development tools
(selenium pulls in trio, which httpcore then imports; rich, Pygments), which inflate both the
import and the first event. The deployed venv is a plain ``pip install -r requirements.txt`` of
the archive's ``requirements.txt`` exactly as ``scripts/package.py`` writes it (the pinned
runtime closure of the core and the ``functions``, ``firestore`` and ``cloud`` extras, plus any
``functions/<name>/requirements.txt``), with the archive's ``.dist-info`` (the plugin entry
points) in its site-packages; khook_core itself is not installed, it is found on ``PYTHONPATH``
as at the archive's root. ``archived_config`` gives a benchmark's config directory the files
the archive adds to ``config/`` (the pre-parsed YAML).

Built under ``.khook/deployed-venv/`` on first use (pip's cache makes rebuilds quick) and again
only when that requirements text (or the interpreter) changes.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".khook" / "deployed-venv"
STAMP = VENV / ".requirements-sha256"


def _package() -> ModuleType:
    """scripts/package.py, the code that writes the archives."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        return importlib.import_module("package")
    finally:
        sys.path.remove(str(ROOT / "scripts"))


def _pyproject(root: Path = ROOT) -> dict[str, Any]:
    return tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))


def requirements(root: Path = ROOT) -> str:
    """What the archives install: the common closure plus every function's own requirements."""
    text: str = _package().runtime_requirements(_pyproject(root))
    for extra in sorted(root.glob("functions/*/requirements.txt")):
        text += f"# {extra.parent.name}\n{extra.read_text(encoding='utf-8').rstrip()}\n"
    return text


def archived_config(config: Path) -> Path:
    """Write into ``config`` what the archive adds to it (``scripts/package.py``): each YAML
    file's pre-parsed form, which a deployed function loads instead of parsing the YAML."""
    for path, form in _package().preparsed_forms(config).items():
        path.write_bytes(form)
    return config


def warm_bytecode() -> None:
    """Compile khook_core and the functions, as a deployed image ships them.

    With PYTHONDONTWRITEBYTECODE set (as in some CI and dev shells) every process would
    otherwise compile every khook module from source, which is not what an instance pays.
    """
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "khook_core", "functions"],
        cwd=ROOT,
        check=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""},
    )


def deployed_python() -> Path:
    """The deployed venv's interpreter, (re)built first when its requirements changed."""
    text = requirements()
    key = hashlib.sha256(f"{sys.version}\n{text}".encode()).hexdigest()
    python = VENV / "bin" / "python"
    if python.exists() and STAMP.exists() and STAMP.read_text() == key:
        return python
    print(
        f"building the deployed venv in {VENV.relative_to(ROOT)}/ (the archive's "
        "requirements.txt, non-editable)",
        flush=True,
    )
    shutil.rmtree(VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    wanted = VENV / "requirements.txt"
    wanted.write_text(text, encoding="utf-8")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r", str(wanted)], check=True)
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    for name, content in _package().dist_info(_pyproject()).items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_bytes(content)
    STAMP.write_text(key)
    return python
