"""Who may read the console: loopback clients only unless allowed, and the optional token.

Refusals are JSON like every other error of a function: 401 when no credentials came (with
``WWW-Authenticate: Bearer``), 403 when the token is wrong or the client is not on this host.
The page and its static files need no token (they hold no data; the page sends the token it was
given with every API call), but they stay loopback-only like the API.
"""

from __future__ import annotations

import hmac
import ipaddress

import flask

from khook_core.errors import AuthError, InvalidEventError
from khook_core.settings import ConsoleSettings


def check_client(request: flask.Request, settings: ConsoleSettings) -> None:
    """Refuse a client from another host unless ``allow_remote``.

    Raises:
        InvalidEventError: 403 naming the setting that would allow it.
    """
    if settings.allow_remote or _is_loopback(request.remote_addr):
        return
    raise InvalidEventError(
        "the console answers loopback clients only; set KHOOK_CONSOLE_ALLOW_REMOTE=true where "
        "something else (Cloud Run IAM) authenticates callers",
        field="client",
        status=403,
    )


def check_token(request: flask.Request, settings: ConsoleSettings) -> None:
    """Compare the bearer token in constant time, when one is configured.

    Raises:
        AuthError: 401, no ``Authorization: Bearer`` header.
        InvalidEventError: 403, a token that is not the configured one.
    """
    if settings.token is None:
        return
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise AuthError("this console needs an Authorization: Bearer token", field="authorization")
    expected = settings.token.get_secret_value().encode()
    if not hmac.compare_digest(given.strip().encode(), expected):
        raise InvalidEventError(
            "the bearer token is not this console's", field="authorization", status=403
        )


def _is_loopback(address: str | None) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1 from a dual-stack socket
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)
