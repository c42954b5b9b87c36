"""Personal data a source may opt into masking (``redact: {pii: [email, phone, ip]}``).

Off by default: an IP address or a host's e-mail alias is often what an investigation needs.
"""

from __future__ import annotations

import functools
import re
from typing import Final

PII_SOURCES: Final[dict[str, str]] = {
    "email": r"(?<![\w.+-])[\w.+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+",
    "phone": r"(?<![\w+])\+?\d(?:[ ().-]?\d){7,14}(?![\w])",
    "ip": (
        r"(?<![\w.:])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\w.])"
        r"|(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){2,7}(?::|[0-9A-Fa-f]{1,4})(?![\w:])"
    ),
}
"""Each opt-in kind's pattern source (the kind is the mask's KIND)."""


@functools.cache
def pii_pattern(kind: str) -> re.Pattern[str]:
    """``kind``'s compiled pattern, compiled on first use: a kind no hook opts into is never
    compiled, so a cold start does not pay for it."""
    return re.compile(PII_SOURCES[kind])


def pii_kind(pattern: re.Pattern[str]) -> str:
    """The kind ``pattern`` (from ``pii_pattern``) masks."""
    return next(kind for kind, source in PII_SOURCES.items() if source == pattern.pattern)
