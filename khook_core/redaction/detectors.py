"""The credential detectors: one regular expression a format, all run as one alternation.

Each detector names the kind a masked value shows (``[redacted:KIND:HASH8]``) and the group
that holds the secret (the rest of the match is context that stays: ``password=``, the user of
``user:password@``). The patterns follow each vendor's documented token format, so they match
what a key looks like, not merely something random: a digest, a UID or a commit SHA has none of
these shapes and is left alone.

All detectors are compiled into one alternation (``COMBINED``), so the common case, a text with
no credential in it, costs one scan by the regex engine rather than one a detector.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

MASK_PREFIX: Final = "[redacted:"
"""How every masked value starts; a value that already starts so is never masked again."""

_VALUE_END = r"""\s"'`,;&<>()\[\]{}|\\"""
"""Characters that end an unquoted value of a ``key=value`` pair."""

SECRET_KEY_WORDS: Final = (
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "token",
    "api[_-]?key",
    "apikey",
    "access[_-]?key",
    "secret[_-]?key",
    "private[_-]?key",
    "account[_-]?key",
    "sharedaccesskey",
    "sharedaccesssignature",
    "client[_-]?secret",
    "credentials?",
    "authorization",
)
"""Words that, ending a field or key name, say its value is a secret (``db_password``,
``X-Api-Key``, ``slackToken``); a name that only contains one (``secretName``,
``token_expiry``) is a reference or a time, not a secret."""

SECRET_KEY: Final = re.compile(r"(?i)(?:" + "|".join(SECRET_KEY_WORDS) + r")\Z")
"""Searched in a field name: it ends in one of ``SECRET_KEY_WORDS``."""


@dataclass(frozen=True, slots=True)
class Detector:
    """One credential format: ``pattern`` (a regex source with one named group ``s`` for the
    secret) and the ``kind`` its masks show."""

    kind: str
    pattern: str


DETECTORS: Final[tuple[Detector, ...]] = (
    # PEM private keys (RSA, EC, PKCS#8, OpenSSH, a GCP service-account's private_key), up to
    # the end marker, or to the end of the text when the value was cut before it.
    Detector(
        "private-key",
        r"(?P<s>-----BEGIN[A-Z0-9 ]{0,30}PRIVATE KEY-----(?:(?!-----END).){0,8000}?"
        r"(?:-----END[A-Z0-9 ]{0,30}PRIVATE KEY-----|\Z))",
    ),
    Detector("aws-access-key-id", r"\b(?P<s>(?:AKIA|ASIA|ABIA|ACCA|AIDA|AROA)[A-Z2-7]{16})\b"),
    Detector("gcp-api-key", r"\b(?P<s>AIza[0-9A-Za-z_-]{35})(?![0-9A-Za-z_-])"),
    Detector("jwt", r"\b(?P<s>eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)"),
    Detector("github-token", r"\b(?P<s>gh[pousr]_[A-Za-z0-9]{36,255})\b"),
    Detector("github-token", r"\b(?P<s>github_pat_[A-Za-z0-9_]{50,255})\b"),
    Detector(
        "gitlab-token",
        r"\b(?P<s>gl(?:pat|ptt|dt|rt|cbt|oas|soat|ft|imt|agent)-"
        r"[A-Za-z0-9_-]{20,})",
    ),
    Detector("slack-token", r"\b(?P<s>xox[abpoesr]-[A-Za-z0-9-]{10,})"),
    Detector(
        "slack-webhook",
        r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<s>[A-Za-z0-9_/-]{20,})",
    ),
    Detector("stripe-key", r"\b(?P<s>(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,})\b"),
    Detector("stripe-webhook-secret", r"\b(?P<s>whsec_[A-Za-z0-9+/=]{24,})"),
    Detector("npm-token", r"\b(?P<s>npm_[A-Za-z0-9]{36})\b"),
    Detector("pypi-token", r"\b(?P<s>pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{40,})"),
    # Authorization header values: Bearer/Basic/Token and the credential after them. A word
    # of prose ("Bearer authentication") has no digit, no token punctuation and no upper-case
    # letter after a lower-case one, as base64 of user:password has.
    Detector(
        "authorization",
        r"(?i:\b(?:bearer|basic|token|digest)\s+)"
        r"(?P<s>(?!\[redacted:)(?=[A-Za-z0-9._~+/=-]*(?:[0-9._~+/=-]|[a-z][A-Za-z0-9]*[A-Z]))"
        r"[A-Za-z0-9._~+/=-]{8,})",
    ),
    # The password of user:password@host in a URL (the user and the host stay).
    Detector(
        "url-password",
        r"\b[A-Za-z][A-Za-z0-9+.-]{1,20}://[^\s:/?#@\[\]]{1,256}:"
        r"(?P<s>(?!\[redacted:)[^\s/?#@\[\]]{1,256})@",
    ),
    # An Azure SAS signature in a URL's query.
    Detector("azure-sas", r"[?&]sig=(?P<s>(?!\[redacted:)[A-Za-z0-9%+/=]{16,})"),
    # key=value / key: value / "key": "value" pairs whose key says secret: text, query strings,
    # JSON and YAML. A space before a colon ("volume \"secret-vol\" : ...") is prose.
    Detector(
        "secret-pair",
        r"(?i:(?<![\w.-])(?<!\[redacted:)[\w.-]{0,40}?(?:" + "|".join(SECRET_KEY_WORDS) + r"))"
        r"[\"']?(?:[ \t]{0,4}=|:(?!//))[ \t]{0,4}(?P<q>[\"'])?"
        r"(?!(?i:bearer|basic|token|digest)\s|-----BEGIN)"  # their own detectors
        r"(?P<s>(?!\[redacted:)(?(q)[^\"'\n]{1,512}|[^" + _VALUE_END + r"]{1,512}))",
    ),
)
"""Every detector, most specific first: the first that matches at a position wins, so a JWT
after ``token=`` is masked as a ``jwt``."""


def _combined() -> re.Pattern[str]:
    """One alternation of every detector, its secret group renamed ``s<index>``."""
    parts = []
    for index, detector in enumerate(DETECTORS):
        source = detector.pattern.replace("(?P<s>", f"(?P<s{index}>")
        source = source.replace("(?P<q>", f"(?P<q{index}>").replace("(?(q)", f"(?(q{index})")
        parts.append(f"(?:{source})")
    return re.compile("|".join(parts), re.DOTALL)


COMBINED: Final = _combined()
"""Every detector in one pattern; the secret of detector ``i`` is group ``s<i>``."""
GROUPS: Final = tuple(
    (COMBINED.groupindex[f"s{index}"], detector.kind) for index, detector in enumerate(DETECTORS)
)
"""(group number, kind) of each detector's secret, in detector order."""
