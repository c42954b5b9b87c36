"""Our credential detectors against detect-secrets' plugins: coverage, false alarms, speed.

The question the redaction step answers per event is "which characters are a secret?", so a
credential counts as covered when masking what a library reports removes it from the text
(every part of it: each line of a PEM body too). A library that flags a line without saying
where the secret is (a PEM header, a keyword) does not cover it.

* **Coverage**: the generated credential corpus of the tests (``tests/support/credentials.py``:
  one realistic credential of every format, in the context it leaks in).
* **False alarms**: event texts that hold no secret: every message and metadata value of the
  bundled samples, and the Kubernetes values that look random (digests, hashes, UIDs, trace
  ids) of the false-positive tests. A text is a false alarm when anything in it is reported.
* **Speed**: microseconds a text over the same clean texts (what nearly every event is), best
  of ``ROUNDS``; detect-secrets with its default plugins, one line at a time as it scans.

Needs ``detect-secrets`` (a development dependency).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' corpus
from _report import figure, table
from detect_secrets.core.scan import scan_line
from detect_secrets.settings import default_settings, transient_settings

from khook_core.cli.replay import read_payloads
from khook_core.redaction.detectors import scan
from khook_core.redaction.redactor import Redactor
from khook_core.runtime import Clock, load_config
from khook_core.sources.base import Dropped
from tests.support.credentials import Credential, corpus
from tests.unit.redaction.test_false_positives import NOW, PLUGINS, RANDOM_LOOKING, RANDOM_MESSAGES

REPO = Path(__file__).resolve().parents[1]
ROUNDS = int(os.environ.get("KHOOK_BENCH_ROUNDS", "5"))
MASK = "<masked>"


def ours(text: str) -> str:
    return REDACTOR.text(text)


def ours_found(text: str) -> bool:
    return bool(scan(text))


def library(text: str) -> str:
    """``text`` with every value detect-secrets reports replaced, line by line."""
    lines = []
    for line in text.split("\n"):
        for found in scan_line(line):
            value = found.secret_value
            if value:
                line = line.replace(value, MASK)
        lines.append(line)
    return "\n".join(lines)


def library_found(text: str) -> bool:
    return any(True for line in text.split("\n") for _ in scan_line(line))


REDACTOR = Redactor(b"b" * 32)


def clean_texts() -> list[str]:
    """Every text of the bundled samples' events and the random-looking Kubernetes values."""
    texts: list[str] = [*RANDOM_LOOKING.values()]
    texts += [m.format(**RANDOM_LOOKING) for m in RANDOM_MESSAGES]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "config"
        shutil.copytree(REPO / "config", root)
        (root / "plugins.yaml").write_text(PLUGINS)
        loaded = load_config(root, clock=Clock(NOW))
        for path in sorted((REPO / "config" / "samples").glob("*/*")):
            source = loaded.sources.get(path.parent.name)
            with path.open(encoding="utf-8") as handle:
                for payload in read_payloads(handle):
                    with contextlib.suppress(Dropped):
                        for event in source.normalize(payload, {}):
                            texts += [event.message, event.reason, event.resource.name]
                            texts += list(_strings(event.tags))
                            texts += list(_strings(event.metadata))
    return [t for t in dict.fromkeys(texts) if t]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value
    elif value is not None:
        yield json.dumps(value)


def covered(mask: Callable[[str], str], credential: Credential) -> bool:
    return not credential.leaks(mask(credential.text))


def speed_us(check: Callable[[str], bool], texts: list[str]) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.process_time()
        for text in texts:
            check(text)
        best = min(best, time.process_time() - start)
    return best / len(texts) * 1e6


ENTROPY = ("Base64HighEntropyString", "HexHighEntropyString")
"""detect-secrets' plugins that flag any random-looking string: without them, its format
plugins alone."""


def library_runs(credentials: list[Credential], clean: list[str]) -> dict[str, list[Any]]:
    """detect-secrets with its default plugins, and with its format plugins alone."""
    runs: dict[str, list[Any]] = {}
    with default_settings() as settings:
        names = [name for name in settings.plugins if name not in ENTROPY]
        runs["detect-secrets, default plugins"] = _measure(
            library, library_found, credentials, clean
        )
    plugins = {"plugins_used": [{"name": name} for name in names]}
    with transient_settings(plugins):
        runs["detect-secrets, without entropy plugins"] = _measure(
            library, library_found, credentials, clean
        )
    return runs


def _measure(
    mask: Callable[[str], str],
    found: Callable[[str], bool],
    credentials: list[Credential],
    clean: list[str],
) -> list[Any]:
    """Covered credential names, false alarms, microseconds a clean text."""
    return [
        [c.name for c in credentials if covered(mask, c)],
        [t for t in clean if found(t)],
        speed_us(found, clean),
    ]


def main() -> int:
    logging.disable(logging.WARNING)
    credentials = corpus()
    clean = clean_texts()
    runs = {"ours (khook_core.redaction)": _measure(ours, ours_found, credentials, clean)}
    runs |= library_runs(credentials, clean)
    n, m = len(credentials), len(clean)
    for name, (cov, alarms, us) in runs.items():
        figure(f"{name}: credentials covered of {n}", len(cov), "formats", "-", None)
        figure(f"{name}: false alarms on {m} clean event texts", len(alarms), "texts", "-", None)
        figure(f"{name}: scan of a clean event text (best of {ROUNDS})", us, "us", "-", None)
    table(
        "credential formats covered: masking what the detector reports removes the credential",
        ["credential", *runs],
        [
            [c.name, *("yes" if c.name in r[0] else "no" for r in runs.values())]
            for c in credentials
        ],
        note="; ".join(
            f"{name}: {len(r[1])} false alarms of {m} clean texts, {r[2]:.1f} us a text"
            for name, r in runs.items()
        ),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
