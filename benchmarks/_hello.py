"""The hello-world function the function figures are measured against.

A functions-framework CloudEvent function that only decodes the Pub/Sub message (base64 +
``json.loads``): what any Pub/Sub-triggered Python function does at least. The request-rate
benchmark serves it beside functions/kubernetes; the cold-start benchmarks spawn it in the
same turns as the functions, so a machine's own floor is read beside each budget.
"""

from __future__ import annotations

from pathlib import Path

SOURCE = '''\
"""Hello world: decodes the Pub/Sub message and nothing else."""

import base64
import json

import functions_framework


@functions_framework.cloud_event
def handle(cloud_event):
    json.loads(base64.b64decode(cloud_event.data["message"]["data"]))
'''


def write(directory: Path) -> Path:
    """``directory/main.py``, the hello world's source (the folder is created)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "main.py"
    path.write_text(SOURCE)
    return path
