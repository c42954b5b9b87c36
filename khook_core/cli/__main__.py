"""``python -m khook_core.cli``: the same as the ``khook`` console script."""

import sys

from khook_core.cli.main import main

sys.exit(main())
