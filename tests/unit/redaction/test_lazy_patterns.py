"""The rare-path patterns compile on first use, not at import: the secret-pair keyword and tail
when a text first holds a pair anchor, a PII kind when a hook first opts into it. A cold
start's plain event pays for none of them."""

from __future__ import annotations

from khook_core.redaction import detectors, pii
from khook_core.redaction.redactor import Redactor

KEY = b"k" * 32


def test_plain_text_compiles_no_pair_pattern() -> None:
    detectors._pair_patterns.cache_clear()
    redactor = Redactor(KEY)
    assert redactor.text("Back-off restarting failed container app") == (
        "Back-off restarting failed container app"
    )
    assert detectors.scan("restarted 3 times") == []
    assert detectors._pair_patterns.cache_info().currsize == 0


def test_pair_patterns_compile_when_a_pair_anchor_appears() -> None:
    detectors._pair_patterns.cache_clear()
    [hit] = detectors.scan("db_password=hunter2hunter2")
    assert (hit.kind, detectors._pair_patterns.cache_info().currsize) == ("secret-pair", 1)


def test_only_the_opted_in_pii_kind_is_compiled() -> None:
    pii.pii_pattern.cache_clear()
    pattern = pii.pii_pattern("email")
    assert pattern.search("mail ops@example.com now") is not None
    assert pii.pii_kind(pattern) == "email"
    assert pii.pii_pattern.cache_info().currsize == 1
