"""The masks: ``[redacted:KIND:HASH8]``, HASH8 a keyed hash of the value.

The hash is an HMAC-SHA256 under the deployment's key (``KHOOK_REDACTION_KEY``), so an agent can
tell that two events carry the same value without learning it, and nobody without the key can
test guesses of a short password against a mask.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

MIN_KEY_BYTES: Final = 16


def new_key() -> str:
    """A fresh random key (hex), as ``khook up`` writes when none is set."""
    return secrets.token_hex(32)


class Masker:
    """Masks values under one key."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the redaction key must be at least {MIN_KEY_BYTES} bytes")
        self._key = key

    def digest(self, value: str) -> str:
        data = value.encode("utf-8", "surrogatepass")
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()[:8]

    def mask(self, kind: str, value: str) -> str:
        return f"[redacted:{kind}:{self.digest(value)}]"


def key_bytes(text: str) -> bytes:
    """The key a setting names: hex (as ``new_key`` writes it) decoded, other text as UTF-8."""
    try:
        return bytes.fromhex(text)
    except ValueError:
        return text.encode()
