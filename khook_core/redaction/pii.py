"""Personal data a source may opt into masking (``redact: {pii: [email, phone, ip]}``).

Off by default: an IP address or a host's e-mail alias is often what an investigation needs.
"""

from __future__ import annotations

import re
from typing import Final

PII_PATTERNS: Final[dict[str, re.Pattern[str]]] = {
    "email": re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+"),
    "phone": re.compile(r"(?<![\w+])\+?\d(?:[ ().-]?\d){7,14}(?![\w])"),
    "ip": re.compile(
        r"(?<![\w.:])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\w.])"
        r"|(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){2,7}(?::|[0-9A-Fa-f]{1,4})(?![\w:])"
    ),
}
"""Each opt-in kind's pattern (the kind is the mask's KIND)."""
