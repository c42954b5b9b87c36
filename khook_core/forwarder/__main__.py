"""``python -m khook_core.forwarder``: the same as the ``khook-forwarder`` command."""

import sys

from khook_core.forwarder.cli import main

sys.exit(main())
