"""The ``khook`` command: validate configuration, replay payloads, inspect sources, firings and
status, sweep held-back events, run the local stack.

One module per group of commands; each adds its own sub-parser. ``main`` turns every error a
user can cause into one line on stderr and an exit status a script can trust: 0 done, 1 the
work found a problem (invalid config or input, a failed source or run), 2 the command line
cannot work (a bad flag, a path that is not there).
"""

from khook_core.cli.main import main
from khook_core.cli.replay import read_payloads

__all__ = ["main", "read_payloads"]
