"""The detectors and masks on their own: every credential format of the corpus is masked, the
mask names its kind and a keyed hash, and nothing of the value survives."""

from __future__ import annotations

import re

import pytest

from khook_core.redaction.keyed import Masker, key_bytes
from khook_core.redaction.redactor import Redactor
from tests.support.credentials import Credential, corpus

KEY = b"k" * 32
MASK = re.compile(r"\[redacted:([a-z0-9-]+):([0-9a-f]{8})\]")
CORPUS = corpus()
EXPECTED_KIND = {
    "pem-rsa": "private-key",
    "pem-pkcs8-ec": "private-key",
    "pem-openssh": "private-key",
    "aws-access-key-id": "aws-access-key-id",
    "gcp-api-key": "gcp-api-key",
    "azure-sas": "azure-sas",
    "github-classic": "github-token",
    "github-fine-grained": "github-token",
    "gitlab": "gitlab-token",
    "slack-bot": "slack-token",
    "slack-webhook": "slack-webhook",
    "stripe": "stripe-key",
    "npm": "npm-token",
    "pypi": "pypi-token",
    "bearer": "authorization",
    "basic": "authorization",
    "url-password": "url-password",
    "jwt-hs256": "jwt",
    "jwt-rs256": "jwt",
    "jwt-es256": "jwt",
    "token-pair": "secret-pair",
    "password-text": "secret-pair",
}


@pytest.mark.parametrize("credential", CORPUS, ids=[c.name for c in CORPUS])
def test_every_credential_format_is_masked(credential: Credential) -> None:
    found: list[str] = []
    out = Redactor(KEY).text(credential.text, found=found)

    assert credential.leaks(out) == []
    assert found
    assert MASK.search(out)
    if credential.name in EXPECTED_KIND:
        assert EXPECTED_KIND[credential.name] in found


def test_the_mask_is_a_keyed_hash_equal_for_equal_values() -> None:
    secret = "hunter2-Pa55"
    one, two = Redactor(KEY), Redactor(b"other-key-0123456789")

    a = one.text(f"password={secret}")
    b = one.text(f"login with password: {secret} refused")
    c = two.text(f"password={secret}")

    assert MASK.findall(a) == MASK.findall(b) == [("secret-pair", Masker(KEY).digest(secret))]
    assert MASK.findall(a) != MASK.findall(c)
    assert one.text("password=another-one") != a


def test_a_hex_key_setting_is_decoded_and_other_text_is_used_as_is() -> None:
    assert key_bytes("00" * 16) == bytes(16)
    assert key_bytes("a long passphrase, not hex") == b"a long passphrase, not hex"
    with pytest.raises(ValueError, match="16 bytes"):
        Masker(b"short")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # context stays: who connected where, which header, which key
        ("postgres://app:s3cr3t-pw@db.shop:5432/orders", "postgres://app:[redacted:"),
        ("Authorization: Bearer abc.def-123456 refused", "Authorization: Bearer [redacted:"),
        ('{"token": "abc", "x": 1}', '{"token": "[redacted:'),
        ('a=1;password="two words";b=2', 'a=1;password="[redacted:'),
    ],
)
def test_only_the_secret_part_is_masked(text: str, expected: str) -> None:
    out = Redactor(KEY).text(text)
    assert out.startswith(expected)
    for secret in ("s3cr3t", "abc.def", "two words"):
        assert secret not in out


def test_a_secret_pair_value_of_a_known_format_is_masked_as_that_format() -> None:
    jwt = next(c for c in CORPUS if c.name == "jwt-rs256")
    assert "[redacted:jwt:" in Redactor(KEY).text(f"id_token={jwt.secret}")


def test_a_private_key_cut_before_its_end_marker_is_masked_to_the_end() -> None:
    pem = next(c for c in CORPUS if c.name == "pem-rsa")
    cut = pem.secret[: len(pem.secret) // 2]
    out = Redactor(KEY).text(f"key: {cut}")
    assert [p for p in pem.pieces if p in out and len(p) > 8] == []
