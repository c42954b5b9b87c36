"""A corpus of realistic credentials, made fresh for each run.

Keys come from ``cryptography`` (RSA, EC and Ed25519 private keys in PEM and OpenSSH form, a
GCP service-account key file around one), JWTs are signed here (HS256 with ``hmac``, RS256
and ES256 with ``cryptography``), and vendor tokens are drawn in each vendor's documented
format. ``Credential.secret`` is what must never leave; ``Credential.text`` is how it appears
in an event (a header, a URL, a ``key=value`` pair, JSON, YAML).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import secrets
import string
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ALNUM = string.ascii_letters + string.digits
UPPER32 = string.ascii_uppercase + "234567"
B64 = string.ascii_letters + string.digits + "+/"


def _draw(alphabet: str, n: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class Credential:
    """``secret``: the part that must be masked; ``text``: it in context."""

    name: str
    secret: str
    text: str
    pieces: tuple[str, ...] = ()
    """Parts of the secret that must not appear either (each line of a PEM body)."""

    def leaks(self, out: str) -> list[str]:
        """The parts of this credential found in ``out``."""
        return [p for p in (self.secret, *self.pieces) if p and p in out]


@functools.cache
def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey,
    fmt: serialization.PrivateFormat,
) -> str:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


def _pem_pieces(pem: str) -> tuple[str, ...]:
    return tuple(line for line in pem.splitlines() if line and not line.startswith("-----"))


def jwt_hs256() -> str:
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = _b64url(
        json.dumps({"sub": "svc-deployer", "iat": 1767600000, "scope": "deploy"}).encode()
    )
    signing = f"{header}.{claims}".encode()
    signature = hmac.new(secrets.token_bytes(32), signing, hashlib.sha256).digest()
    return f"{header}.{claims}.{_b64url(signature)}"


def jwt_rs256() -> str:
    header = _b64url(json.dumps({"alg": "RS256", "kid": "k1"}).encode())
    claims = _b64url(json.dumps({"iss": "https://issuer.example", "sub": "user-42"}).encode())
    signing = f"{header}.{claims}".encode()
    signature = _rsa().sign(signing, padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{claims}.{_b64url(signature)}"


def jwt_es256() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    header = _b64url(json.dumps({"alg": "ES256"}).encode())
    claims = _b64url(json.dumps({"sub": "robot"}).encode())
    signing = f"{header}.{claims}".encode()
    r, s = decode_dss_signature(key.sign(signing, ec.ECDSA(hashes.SHA256())))
    return f"{header}.{claims}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def corpus() -> list[Credential]:
    """One credential of every format, each in the context it is usually leaked in."""
    rsa_pem = _pem(_rsa(), serialization.PrivateFormat.TraditionalOpenSSL)
    pkcs8 = _pem(ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.PKCS8)
    openssh = _pem(ed25519.Ed25519PrivateKey.generate(), serialization.PrivateFormat.OpenSSH)
    sa_key = _pem(_rsa(), serialization.PrivateFormat.PKCS8)
    service_account = json.dumps(
        {
            "type": "service_account",
            "project_id": "shop-prod",
            "private_key_id": secrets.token_hex(20),
            "private_key": sa_key,
            "client_email": "deployer@shop-prod.iam.gserviceaccount.com",
        }
    )
    aws_id = "AKIA" + _draw(UPPER32, 16)
    aws_secret = _draw(B64, 40)
    gcp_api = "AIza" + _draw(ALNUM + "-_", 35)
    azure_key = base64.b64encode(secrets.token_bytes(64)).decode()
    sas_sig = base64.b64encode(secrets.token_bytes(32)).decode().replace("+", "%2B")
    ghp = "ghp_" + _draw(ALNUM, 36)
    gh_pat = "github_pat_" + _draw(ALNUM, 22) + "_" + _draw(ALNUM, 59)
    glpat = "glpat-" + _draw(ALNUM + "-_", 20)
    slack_bot = f"xoxb-{_draw(string.digits, 12)}-{_draw(string.digits, 13)}-{_draw(ALNUM, 24)}"
    slack_hook = f"T{_draw(UPPER32, 8)}/B{_draw(UPPER32, 10)}/{_draw(ALNUM, 24)}"
    stripe = "sk_live_" + _draw(ALNUM, 24)
    npm = "npm_" + _draw(ALNUM, 36)
    pypi = "pypi-AgEIcHlwaS5vcmc" + _draw(ALNUM + "-_", 70)
    bearer = _draw(ALNUM, 20) + "." + _draw(ALNUM, 12)
    basic = base64.b64encode(f"admin:{_draw(ALNUM, 14)}".encode()).decode()
    db_password = _draw(ALNUM, 10) + "!" + _draw(ALNUM, 4)
    hs, rs, es = jwt_hs256(), jwt_rs256(), jwt_es256()
    token = _draw(ALNUM, 32)
    api_key = _draw(string.hexdigits.lower(), 32)
    yaml_secret = _draw(ALNUM, 24)
    return [
        Credential("pem-rsa", rsa_pem, f"loaded key:\n{rsa_pem}", _pem_pieces(rsa_pem)),
        Credential("pem-pkcs8-ec", pkcs8, pkcs8, _pem_pieces(pkcs8)),
        Credential("pem-openssh", openssh, f"id_ed25519 = {openssh}", _pem_pieces(openssh)),
        Credential("gcp-service-account", sa_key, service_account, _pem_pieces(sa_key)),
        Credential("aws-access-key-id", aws_id, f"using AWS_ACCESS_KEY_ID={aws_id}"),
        Credential("aws-secret", aws_secret, f"aws_secret_access_key = {aws_secret}"),
        Credential("aws-secret-json", aws_secret, json.dumps({"SecretAccessKey": aws_secret})),
        Credential("gcp-api-key", gcp_api, f"GET https://maps.example/api?x=1&k={gcp_api}"),
        Credential(
            "azure-connection-string",
            azure_key,
            "DefaultEndpointsProtocol=https;AccountName=shopdata;"
            f"AccountKey={azure_key};EndpointSuffix=core.windows.net",
        ),
        Credential(
            "azure-sas",
            sas_sig,
            f"https://shopdata.blob.core.windows.net/c/b?sv=2022-11-02&sp=r&sig={sas_sig}",
        ),
        Credential("github-classic", ghp, f"clone https://{ghp}@github.com/octo-org/shop.git"),
        Credential("github-fine-grained", gh_pat, f"GITHUB_TOKEN {gh_pat} rejected"),
        Credential("gitlab", glpat, f"PRIVATE-TOKEN: {glpat}"),
        Credential("slack-bot", slack_bot, f"posting with {slack_bot}"),
        Credential(
            "slack-webhook",
            slack_hook,
            f"POST https://hooks.slack.com/services/{slack_hook} returned 404",
        ),
        Credential("stripe", stripe, f"stripe.api_key = '{stripe}'"),
        Credential("npm", npm, f"//registry.npmjs.org/:_authToken={npm}"),
        Credential("pypi", pypi, f"twine upload -p {pypi}"),
        Credential("bearer", bearer, f"Authorization: Bearer {bearer}"),
        Credential("basic", basic, f"authorization: Basic {basic}"),
        Credential(
            "url-password",
            db_password,
            f"could not connect to postgres://app:{db_password}@db.shop:5432/orders",
        ),
        Credential("jwt-hs256", hs, f"session {hs} expired"),
        Credential("jwt-rs256", rs, f'{{"id_token": "{rs}"}}'),
        Credential("jwt-es256", es, f"x-jwt={es}"),
        Credential("token-pair", token, f"retrying with token={token}"),
        Credential("api-key-json", api_key, json.dumps({"X-Api-Key": api_key})),
        Credential("yaml-secret", yaml_secret, f"auth:\n  clientSecret: {yaml_secret}\n"),
        Credential("password-text", db_password, f"login failed: password={db_password}"),
    ]
