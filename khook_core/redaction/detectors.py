"""The credential detectors: one regular expression a format, gated by cheap literal anchors.

Each detector names the kind a masked value shows (``[redacted:KIND:HASH8]``) and the group
``s`` that holds the secret (the rest of the match is context that stays: ``password=``, the
user of ``user:password@``). The patterns follow each vendor's documented token format, so they
match what a key looks like, not merely something random: a digest, a UID or a commit SHA has
none of these shapes and is left alone.

Speed: Python's ``re`` tries a pattern at every position unless it starts with a literal, so a
dozen patterns over every event would cost more than the rest of the pipeline. ``scan`` first
looks for the detectors' *anchors* (``akia``, ``eyj``, ``://``, ``pass``…) in the lower-cased
text with plain substring searches, and runs only the detectors whose anchors it found; a text
without any anchor costs those searches alone.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final, NamedTuple

MASK_PREFIX: Final = "[redacted:"
"""How every masked value starts; a value that already starts so is never masked again."""

NOT_A_MASK: Final = r"(?!\[redacted:)(?![0-9a-f]{8}\])"
"""Not the start of a mask, nor the hash at a mask's end (``private-key:`` inside
``[redacted:private-key:1a2b3c4d]`` reads like a pair)."""

KEYWORDS: Final = (
    r"pass(?:word|wd|phrase)",
    "pwd",
    r"secret(?:[_-]?key)?",
    "token",
    r"api[_-]?key",
    r"access[_-]?key",
    r"private[_-]?key",
    r"account[_-]?key",
    "sharedaccesskey",
    "sharedaccesssignature",
    r"credentials?",
    "authorization",
)
"""Lower-case words that, ending a key (``db_password``, ``X-Api-Key``, ``slackToken``), say its
value is a secret; a key that only contains one (``secretName``, ``token_expiry``) is a
reference or a time, not a secret."""

SECRET_KEY: Final = re.compile(r"(?i)(?:" + "|".join(KEYWORDS) + r")\Z")
"""Searched in a field name: it ends in one of ``KEYWORDS``."""

_VALUE_END = r"""\s"'`,;&<>()\[\]{}|\\…"""
"""Characters that end an unquoted value of a ``key=value`` pair (``…``, the cut mark, too)."""

_PAIR_TAIL: Final = (
    # the key's closing quote, then = (spaces allowed) or : (none before it: "volume
    # \"secret-vol\" : ..." is prose), then the value, quoted or not. An Authorization scheme
    # and a PEM block are left to their own detectors.
    r"[\"']?(?:[ \t]{0,4}=|:(?!//))[ \t]{0,4}(?P<q>[\"'])?"
    r"(?!(?:bearer|basic|token|digest|Bearer|Basic|Token|Digest|BEARER|BASIC|TOKEN)\s)"
    r"(?!-----BEGIN)" + NOT_A_MASK + r"(?P<s>(?(q)[^\"'\n…]{1,512}|[^" + _VALUE_END + r"]{1,512}))"
)
"""Matched right after a keyword: the separator and the value of a secret pair (compiled by
``_pair_patterns``)."""


@dataclass(frozen=True, slots=True)
class Detector:
    """One credential format: its kind, its pattern's source (group ``s`` is the secret) and
    the lower-case literals one of which every match contains.

    The pattern is compiled on its first use (``pattern``), not at import: most texts have no
    anchor, and a cold start that compiled all of them would pay for every format up front.
    """

    kind: str
    source: str
    anchors: tuple[str, ...]

    @property
    def pattern(self) -> re.Pattern[str]:
        """The compiled pattern, compiled once."""
        return _compiled(self.source)


@functools.cache
def _compiled(source: str) -> re.Pattern[str]:
    return re.compile(source, re.DOTALL)


def _d(kind: str, pattern: str, *anchors: str) -> Detector:
    return Detector(kind, pattern, anchors)


DETECTORS: Final[tuple[Detector, ...]] = (
    # PEM private keys (RSA, EC, PKCS#8, OpenSSH, a GCP service-account's private_key), up to
    # the end marker, or to the end of the text when the value was cut before it.
    _d(
        "private-key",
        r"(?P<s>-----BEGIN[A-Z0-9 ]{0,30}PRIVATE KEY-----(?:(?!-----END).){0,8000}?"
        r"(?:-----END[A-Z0-9 ]{0,30}PRIVATE KEY-----|\Z))",
        "-----begin",
    ),
    _d(
        "aws-access-key-id",
        r"(?P<s>(?:AKIA|ASIA|ABIA|ACCA|AIDA|AROA)[A-Z2-7]{16})(?![A-Za-z0-9])",
        "akia",
        "asia",
        "abia",
        "acca",
        "aida",
        "aroa",
    ),
    _d("gcp-api-key", r"(?P<s>AIza[0-9A-Za-z_-]{35})(?![0-9A-Za-z_-])", "aiza"),
    _d("jwt", r"(?P<s>eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)", "eyj"),
    _d(
        "github-token",
        r"(?P<s>gh[pousr]_[A-Za-z0-9]{36,255})(?![A-Za-z0-9_])",
        "ghp_",
        "gho_",
        "ghu_",
        "ghs_",
        "ghr_",
    ),
    _d("github-token", r"(?P<s>github_pat_[A-Za-z0-9_]{50,255})", "github_pat_"),
    _d(
        "gitlab-token",
        r"(?P<s>gl(?:pat|ptt|dt|rt|cbt|oas|soat|ft|imt|agent)-[A-Za-z0-9_-]{20,})",
        "glpat-",
        "glptt-",
        "gldt-",
        "glrt-",
        "glcbt-",
        "gloas-",
        "glsoat-",
        "glft-",
        "glimt-",
        "glagent-",
    ),
    _d("slack-token", r"(?P<s>xox[abpoesr]-[A-Za-z0-9-]{10,})", "xox"),
    _d(
        "slack-webhook",
        r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<s>[A-Za-z0-9_/-]{20,})",
        "hooks.slack.com/",
    ),
    _d("stripe-key", r"(?P<s>(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,})", "_live_", "_test_"),
    _d("stripe-webhook-secret", r"(?P<s>whsec_[A-Za-z0-9+/=]{24,})", "whsec_"),
    _d("npm-token", r"(?P<s>npm_[A-Za-z0-9]{36})(?![A-Za-z0-9])", "npm_"),
    _d("pypi-token", r"(?P<s>pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{40,})", "pypi-ageichlwas5vcmc"),
    # Authorization header values: the credential after Bearer/Basic/Token/Digest. A word of
    # prose ("Bearer authentication") has no digit, no token punctuation and no upper-case
    # letter after a lower-case one, as base64 of user:password has.
    _d(
        "authorization",
        r"(?:Bearer|bearer|BEARER|Basic|basic|BASIC|Token|token|TOKEN|Digest|digest)[ \t]+"
        + NOT_A_MASK
        + r"(?P<s>(?=[A-Za-z0-9._~+/=-]*(?:[0-9._~+/=-]|[a-z][A-Za-z0-9]*[A-Z]))"
        r"[A-Za-z0-9._~+/=-]{8,})",
        "bearer",
        "basic",
        "token",
        "digest",
    ),
    # The password of user:password@host in a URL (the user and the host stay).
    _d(
        "url-password",
        r"://[^\s:/?#@\[\]]{1,256}:" + NOT_A_MASK + r"(?P<s>[^\s/?#@\[\]]{1,256})@",
        "://",
    ),
    # An Azure SAS signature in a URL's query.
    _d("azure-sas", r"[?&]sig=" + NOT_A_MASK + r"(?P<s>[A-Za-z0-9%+/=]{16,})", "sig="),
)
"""Every format detector, most specific first: of two matches at one position the earlier
detector's wins. ``secret-pair`` (keyword + ``_PAIR_TAIL``) comes after all of them."""

PAIR_KIND: Final = "secret-pair"
_PAIR_ORDER: Final = len(DETECTORS)

PAIR_ANCHORS: Final = (
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "credential",
    "authorization",
    "signature",
)
"""Lower-case literals one of which every ``KEYWORDS`` match contains."""

_ANCHOR_DETECTORS: Final[dict[str, tuple[int, ...]]] = {}
for _index, _detector in enumerate(DETECTORS):
    for _anchor in _detector.anchors:
        _ANCHOR_DETECTORS[_anchor] = (*_ANCHOR_DETECTORS.get(_anchor, ()), _index)
ANCHORS: Final = tuple(dict.fromkeys((*PAIR_ANCHORS, *_ANCHOR_DETECTORS)))
"""Every anchor once. Looked for with ``in``: a few dozen substring searches in C cost less
than one pass of a regular-expression alternation over the same text."""


@functools.cache
def _pair_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The keyword search and ``_PAIR_TAIL``, compiled when a text first holds a pair anchor:
    most texts hold none, and a cold start would pay for the two largest patterns up front."""
    return re.compile("|".join(KEYWORDS)), re.compile(_PAIR_TAIL)


_ASCII_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class Hit(NamedTuple):
    """One secret found: where it is and what kind it is."""

    start: int
    end: int
    kind: str
    order: int


def lowered(text: str) -> str:
    """``text`` in lower case, one character for one (so positions carry over)."""
    low = text.lower()
    return low if len(low) == len(text) else text.translate(_ASCII_LOWER)


PLAIN_MAX: Final = 14
"""The longest text ``plain`` vouches for: the shortest match any detector can have in a text
of letters, digits and ``-._/`` alone is a Slack token's 15 characters (``xoxb-`` + 10). The
other formats need a space, ``=``, ``:``, ``@``, ``?`` or ``&``, or 20 characters or more."""
PLAIN: Final = re.compile(rf"[A-Za-z0-9._/-]{{0,{PLAIN_MAX}}}\Z")


def plain(text: str) -> bool:
    """Can no detector match in ``text``, by its length and characters alone? A pre-check
    cheaper than ``anchored``: a Kubernetes name, a reason, a namespace/name pair pass it
    without a lookup or a scan."""
    return PLAIN.match(text) is not None


def anchored(text: str) -> bool:
    """Could any detector match in ``text``? False is certain; True needs ``scan``."""
    low = lowered(text)
    return any(anchor in low for anchor in ANCHORS)


def scan(text: str) -> list[Hit]:
    """Every secret in ``text``, in order, none overlapping."""
    low = lowered(text)
    present = [anchor for anchor in ANCHORS if anchor in low]
    if not present:
        return []
    hits: list[Hit] = []
    run = sorted({i for anchor in present for i in _ANCHOR_DETECTORS.get(anchor, ())})
    for index in run:
        detector = DETECTORS[index]
        hits.extend(
            Hit(m.start("s"), m.end("s"), detector.kind, index)
            for m in detector.pattern.finditer(text)
        )
    if any(anchor in PAIR_ANCHORS for anchor in present):
        keywords, pair_tail = _pair_patterns()
        for keyword in keywords.finditer(low):
            tail = pair_tail.match(text, keyword.end())
            if tail is not None:
                hits.append(Hit(tail.start("s"), tail.end("s"), PAIR_KIND, _PAIR_ORDER))
    if len(hits) < 2:
        return hits
    hits.sort(key=lambda h: (h.start, h.order))
    kept: list[Hit] = []
    for hit in hits:
        if not kept or hit.start >= kept[-1].end:
            kept.append(hit)
    return kept


def format_of(value: str) -> str:
    """The kind of the format detector that matches all of ``value``, else ``secret-pair``."""
    for hit in scan(value):
        if hit.kind != PAIR_KIND and (hit.start, hit.end) == (0, len(value)):
            return hit.kind
    return PAIR_KIND
