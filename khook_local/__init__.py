"""The whole system on one machine: ``khook up`` starts it, ``khook send`` feeds it.

Every function runs in its own process, functions-framework's app served by ``server``; Pub/Sub
is the Google Cloud CLI's emulator when it is installed, otherwise an in-process bus with the same
REST publish endpoint and delivery semantics; prompts go to a bundled demo A2A agent (or to
``KAGENT_API_URL``).

Development tooling, kept out of the runtime: this package sits on top of ``khook_core`` and
imports it freely; ``khook_core`` imports it only from the ``khook`` command's stack commands
(``up``, ``send``, ``status``), and no function archive holds it.
"""

from __future__ import annotations

from typing import Final

PROJECT: Final = "demo-khook"
"""Project id of every local topic (the emulator validates names like production does)."""
DEFAULT_STATE_DIR: Final = ".khook"
"""Where the stack keeps state, logs, prompts, dead letters and ``stack.json``."""
