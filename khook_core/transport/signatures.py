"""Sender-defined signature schemes: Standard Webhooks 1.0 and PagerDuty v3 webhooks.

Both verify the exact raw body bytes before any parsing, compare in constant time and accept
any one of several signatures, which is how senders rotate keys:

- **Standard Webhooks** (Svix and the services built on it): ``webhook-id``,
  ``webhook-timestamp`` (Unix seconds) and ``webhook-signature`` (space-separated
  ``v1,<base64>``), HMAC-SHA256 over ``<id>.<timestamp>.<body>`` with the key that follows
  ``whsec_`` in the secret, base64-decoded; the timestamp must be inside the replay window.
- **PagerDuty v3**: ``X-PagerDuty-Signature: v1=<hex>[,v1=<hex>...]``, HMAC-SHA256 of the body
  keyed with the subscription's secret as text. PagerDuty signs no timestamp: replays are
  caught by the pipeline's dedup on the payload's event id.

Each failure is an ``AuthError`` (401) naming the header at fault.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
from collections.abc import Mapping
from typing import Final

from khook_core.errors import AuthError

STANDARD_WEBHOOKS_PREFIX: Final = "whsec_"
WEBHOOK_ID: Final = "webhook-id"
WEBHOOK_TIMESTAMP: Final = "webhook-timestamp"
WEBHOOK_SIGNATURE: Final = "webhook-signature"
PAGERDUTY_SIGNATURE: Final = "x-pagerduty-signature"
MAX_SIGNATURES: Final = 16
"""Signatures tried per request: rotation needs two or three, more is a header built to burn CPU."""


def standard_webhooks_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret (a bare base64 secret is accepted too).

    Raises:
        ValueError: the secret is not base64 or is empty; a configuration error.
    """
    text = secret.strip()
    if text.startswith(STANDARD_WEBHOOKS_PREFIX):
        text = text[len(STANDARD_WEBHOOKS_PREFIX) :]
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the Standard Webhooks secret must be whsec_<base64>") from exc
    if not key:
        raise ValueError("the Standard Webhooks secret is empty")
    return key


def verify_standard_webhooks(
    headers: Mapping[str, str],
    body: bytes,
    key: bytes,
    *,
    now: float,
    window_seconds: float,
) -> str:
    """Check the three Standard Webhooks headers; returns the ``webhook-id``.

    Raises:
        AuthError: a header is missing, the timestamp is outside the window, or no ``v1``
            signature matches.
    """
    for name in (WEBHOOK_ID, WEBHOOK_TIMESTAMP, WEBHOOK_SIGNATURE):
        if not headers.get(name, "").strip():
            raise AuthError(f"missing {name} header (Standard Webhooks)", field=name)
    message_id = headers[WEBHOOK_ID].strip()
    stamp = headers[WEBHOOK_TIMESTAMP].strip()
    if not (stamp.isascii() and stamp.isdigit()):
        raise AuthError(
            f"{WEBHOOK_TIMESTAMP} must be a Unix time in whole seconds", field=WEBHOOK_TIMESTAMP
        )
    skew = abs(now - float(stamp))
    if not math.isfinite(skew) or skew > window_seconds:
        raise AuthError(
            f"{WEBHOOK_TIMESTAMP} is {skew:.0f} s away from now, outside the replay "
            f"window of {window_seconds:.0f} s",
            field=WEBHOOK_TIMESTAMP,
        )
    signed = f"{message_id}.{stamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    given = [part.partition(",") for part in headers[WEBHOOK_SIGNATURE].split()[:MAX_SIGNATURES]]
    if not any(
        version == "v1" and hmac.compare_digest(expected, value.encode("utf-8", "replace"))
        for version, _, value in given
    ):
        raise AuthError(
            f"{WEBHOOK_SIGNATURE}: no v1 signature matches the id, timestamp and body",
            field=WEBHOOK_SIGNATURE,
        )
    return message_id


def verify_pagerduty(headers: Mapping[str, str], body: bytes, secret: str) -> None:
    """Check ``X-PagerDuty-Signature`` (any of its comma-separated ``v1=<hex>``).

    Raises:
        AuthError: the header is missing or no signature matches.
    """
    header = headers.get(PAGERDUTY_SIGNATURE, "").strip()
    if not header:
        raise AuthError(f"missing {PAGERDUTY_SIGNATURE} header", field=PAGERDUTY_SIGNATURE)
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
    given = [part.strip().partition("=") for part in header.split(",")[:MAX_SIGNATURES]]
    if not any(
        version == "v1"
        and hmac.compare_digest(expected, value.strip().lower().encode("utf-8", "replace"))
        for version, _, value in given
    ):
        raise AuthError(
            f"{PAGERDUTY_SIGNATURE}: no v1 signature matches the body", field=PAGERDUTY_SIGNATURE
        )
