"""What each function imports, and what it costs (``python -X importtime``).

No function may import kubernetes, google-cloud-pubsub, grpc or a2a-sdk unless it uses them:
each would add 100-300 ms to every cold start. Prints, per function, the cumulative import time
of its module and the heaviest top-level imports, and checks the forbidden list. The breakdown
goes into docs/benchmarks.md as a table. Figures are from one ``-X importtime`` run each (after
a warm-up run that fills the bytecode cache), not medians; first in the deployed venv (what a
function's archive installs, benchmarks/_deployed.py: the table comes from it), then, labelled,
in the development venv; the configuration is the project's ``config/`` as an archive carries
it (each YAML file with its pre-parsed form).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _deployed import archived_config, deployed_python
from _report import figure, table

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("kubernetes", "google.cloud.pubsub", "google.pubsub_v1", "grpc", "a2a")
TOP = 5
LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


def import_profile(main: Path, python: str, config: Path) -> list[tuple[int, int, str]]:
    """(cumulative µs, depth, module) for every import of the function's module."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "KHOOK_LOG_FORMAT": "json",
        "KHOOK_CONFIG_DIR": str(config),
    }
    env.pop("VIRTUAL_ENV", None)
    code = (
        f"import sys; sys.path.insert(0, {str(main.parent)!r}); "
        "import functions_framework; import main"
    )
    result = subprocess.run(
        [python, "-X", "importtime", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    rows = []
    for line in result.stderr.splitlines():
        match = LINE.match(line)
        if match:
            depth = (len(match.group(3)) - 1) // 2
            rows.append((int(match.group(2)), depth, match.group(4)))
    return rows


def children_of(parent: str, rows: list[tuple[int, int, str]]) -> list[tuple[int, str]]:
    """(cumulative µs, module) of the direct imports of top-level module ``parent``.

    ``-X importtime`` prints a module after everything it imported, so the depth-1 rows just
    before a depth-0 row are that module's direct imports.
    """
    pending: list[tuple[int, str]] = []
    for cum, depth, module in rows:
        if depth == 1:
            pending.append((cum, module))
        elif depth == 0:
            if module == parent:
                return pending
            pending = []
    return []


def main() -> int:
    pythons = {"deployed": str(deployed_python()), "development": sys.executable}
    with tempfile.TemporaryDirectory() as tmp:
        # The project's config/ as an archive carries it (with each YAML's pre-parsed form).
        config = archived_config(shutil.copytree(ROOT / "config", Path(tmp) / "config"))
        for venv, python in pythons.items():
            profile(venv, python, config, budgeted=venv == "deployed")
    return 0


def profile(venv: str, python: str, config: Path, *, budgeted: bool) -> None:
    """Every function's imports in one venv; the table only for the deployed one."""
    label = "" if budgeted else f" [{venv} venv]"
    print(
        f"imports of each function in the {venv} venv (python -X importtime, after "
        "functions_framework)"
    )
    breakdown = []
    for main_py in sorted(ROOT.glob("functions/*/main.py")):
        name = main_py.parent.name
        import_profile(main_py, python, config)  # warm-up: the bytecode cache, as deployed
        rows = import_profile(main_py, python, config)
        modules = {module for _, _, module in rows}
        heavy = sorted(
            m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)
        )
        own = next((cum for cum, depth, module in rows if module == "main" and depth == 0), 0)
        top = [
            (c, m) for c, m in sorted(children_of("main", rows), reverse=True)[:TOP] if c >= 500
        ]  # leave out what is already loaded (a few µs)
        figure(
            f"functions/{name}: import of main.py (cumulative, one run){label}",
            own / 1000,
            "ms",
            "-",
            None,
        )
        heaviest = ", ".join(f"{m} {c / 1000:.0f} ms" for c, m in top)
        print(f"    heaviest top-level imports: {heaviest}")
        breakdown.append([f"functions/{name}", f"{own / 1000:.0f} ms", heaviest])
        figure(
            f"functions/{name}: heavy clients imported{label}",
            len(heavy),
            "modules",
            "0",
            not heavy,
        )
        if heavy:
            print(f"    forbidden imports: {', '.join(heavy[:8])}")
    if budgeted:
        table(
            "Heaviest top-level imports of each function",
            [
                "function",
                "main.py (cumulative)",
                f"heaviest {TOP} imports made by main.py itself (cumulative)",
            ],
            breakdown,
            "`python -X importtime` in the deployed venv (what a function's archive "
            "installs), one run after `import functions_framework` (whose own imports are "
            "not counted); a module already imported by functions_framework costs nothing "
            "here.",
        )


if __name__ == "__main__":
    sys.exit(main())
