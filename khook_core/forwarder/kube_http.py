"""A lean Kubernetes API client: where the server is, how to authenticate, one HTTP request.

The forwarder's Events path (list, watch, owner ``get``) needs a URL, a bearer token or a client
certificate, and a CA, not the official client's models: importing ``kubernetes`` loads every
model module, requests, oauthlib and google-auth, some 27 MiB of RSS before the first event.
Requests go over urllib3 (which the Pub/Sub publisher shares).

Where the server is, in the official client's order: a URL without credentials (tests); inside
a pod, the service account (``KUBERNETES_SERVICE_HOST``/``PORT``, its token file re-read every
minute so a rotated token is picked up, and its CA); else the kubeconfig's current context
(token or token file, client certificate and key as files or data, CA as a file or data,
``insecure-skip-tls-verify``, ``tls-server-name``, ``proxy-url``). A kubeconfig user that runs
a command (``exec``) or an ``auth-provider`` is loaded by the official client's loader instead,
imported only then, whose refresh hook keeps its token fresh.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import urllib3
import yaml

logger = logging.getLogger(__name__)

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_REREAD_SECONDS = 60.0
"""How often a token file is read again (the kubelet rotates a projected token well before it
expires)."""


class ApiException(Exception):
    """An API server's refusal or error: ``status`` (HTTP code), ``reason``, and the ``body``
    (a ``Status`` object as JSON, when the server sent one)."""

    def __init__(
        self, status: int | None = None, reason: str | None = None, body: str | None = None
    ) -> None:
        super().__init__(f"({status}) Reason: {reason}")
        self.status = status
        self.reason = reason
        self.body = body


class ConfigException(Exception):
    """No usable cluster configuration."""


@dataclass
class KubeConfig:
    """How to reach one API server."""

    host: str
    token: Callable[[], str | None] = lambda: None
    ca_file: str | None = None
    ca_data: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    verify: bool = True
    server_name: str | None = None
    """``tls-server-name``: the name the server's certificate is checked against."""
    proxy: str | None = None
    """``proxy-url``: an HTTP(S) proxy every request goes through."""
    temp_files: list[str] = field(default_factory=list)
    """Files written for certificate data (urllib3 reads a client key only from a file)."""


class TokenFile:
    """A token read from a file, again every ``TOKEN_REREAD_SECONDS`` (rotation)."""

    def __init__(self, path: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._read_at = 0.0

    def __call__(self) -> str | None:
        with self._lock:
            now = self._clock()
            if self._token is None or now - self._read_at >= TOKEN_REREAD_SECONDS:
                self._token = Path(self.path).read_text().strip()
                self._read_at = now
            return self._token


class KubeClient:
    """One connection pool to one API server; ``request`` raises ``ApiException`` on an
    answer outside 2xx."""

    def __init__(self, config: KubeConfig) -> None:
        self.config = config
        self.host = config.host.rstrip("/")
        tls: dict[str, Any] = {}
        if self.host.startswith("https://"):
            if config.verify:
                tls = {
                    "cert_reqs": "CERT_REQUIRED",
                    "ca_certs": config.ca_file,
                    "ca_cert_data": config.ca_data,
                }
                if not config.ca_file and not config.ca_data:
                    tls["ca_certs"] = _ca_bundle()
            else:
                # Said once here, not by urllib3 on every request of every watch.
                logger.warning(
                    "insecure-skip-tls-verify: the API server's certificate is not verified"
                )
                urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
                tls = {"cert_reqs": "CERT_NONE", "assert_hostname": False}
            if config.cert_file:
                tls |= {"cert_file": config.cert_file, "key_file": config.key_file}
            if config.server_name and config.verify:
                tls["server_hostname"] = config.server_name
        self._pool: urllib3.PoolManager = (
            urllib3.ProxyManager(config.proxy, num_pools=4, maxsize=4, **tls)
            if config.proxy
            else urllib3.PoolManager(num_pools=4, maxsize=4, **tls)
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | tuple[float, float] | None = None,
        preload: bool = True,
    ) -> urllib3.BaseHTTPResponse:
        """Send one request; with ``preload=False`` the body is left to stream.

        Raises:
            ApiException: the server answered outside 2xx.
            urllib3.exceptions.HTTPError, OSError: connection trouble.
        """
        url = self.host + path
        if query:
            url += "?" + urlencode({k: _query_value(v) for k, v in query.items() if v is not None})
        headers = {"Accept": "application/json"}
        token = self.config.token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        if isinstance(timeout, tuple):
            timeout_ = urllib3.Timeout(connect=timeout[0], read=timeout[1])
        else:
            timeout_ = urllib3.Timeout(total=timeout)
        response = self._pool.request(
            method,
            url,
            body=data,
            headers=headers,
            retries=False,
            timeout=timeout_,
            preload_content=preload,
        )
        if not 200 <= response.status <= 299:
            text = response.data.decode("utf-8", errors="replace")
            response.release_conn()
            raise ApiException(response.status, response.reason, text)
        return response

    def get_json(
        self,
        path: str,
        *,
        timeout: float | tuple[float, float] | None = None,
        query: Mapping[str, Any] | None = None,
    ) -> Any:
        return json.loads(self.request("GET", path, query=query, timeout=timeout).data)

    def close(self) -> None:
        self._pool.clear()
        for path in self.config.temp_files:
            with contextlib.suppress(OSError):
                os.unlink(path)
        self.config.temp_files.clear()

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _query_value(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _ca_bundle() -> str | None:
    try:
        import certifi
    except ImportError:
        return None
    return str(certifi.where())


def in_cluster_config(host: str, port: str, account: Path = SERVICE_ACCOUNT) -> KubeConfig:
    """The pod's service account (``host``/``port`` from ``KUBERNETES_SERVICE_HOST``/``PORT``).

    Raises:
        ConfigException: not inside a pod.
    """
    token_file = account / "token"
    if not host or not port or not token_file.is_file():
        raise ConfigException("not in a cluster: no KUBERNETES_SERVICE_HOST/PORT or token")
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return KubeConfig(
        host=f"https://{host}:{port}",
        token=TokenFile(str(token_file)),
        ca_file=str(account / "ca.crt"),
    )


def kubeconfig_config(paths: str | None, home: Path | None = None) -> KubeConfig:
    """The current context of the kubeconfig file(s) (``os.pathsep``-separated; default
    ``~/.kube/config``): for each name the first file to define it wins, as with kubectl.

    Raises:
        ConfigException: no file, no current context, or what it names is missing.
    """
    files = [p for p in (paths or "").split(os.pathsep) if p] or [
        str((home or Path.home()) / ".kube" / "config")
    ]
    docs = []
    for name in files:
        path = Path(name).expanduser()
        if path.is_file():
            docs.append((path, yaml.safe_load(path.read_text()) or {}))
    if not docs:
        raise ConfigException(f"no kubeconfig at {', '.join(files)}")
    current = next((d.get("current-context") for _, d in docs if d.get("current-context")), None)
    if not current:
        raise ConfigException("the kubeconfig has no current-context")
    context, _ = _named(docs, "contexts", "context", current)
    cluster, cluster_dir = _named(docs, "clusters", "cluster", context.get("cluster"))
    user, user_dir = _named(docs, "users", "user", context.get("user"), required=False)
    if "exec" in user or "auth-provider" in user:
        return _official_loader(paths, current)
    config = KubeConfig(
        host=str(cluster.get("server") or ""),
        verify=not cluster.get("insecure-skip-tls-verify", False),
        server_name=cluster.get("tls-server-name") or None,
        proxy=cluster.get("proxy-url") or None,
    )
    if not config.host:
        raise ConfigException(f"cluster {context.get('cluster')!r} has no server")
    config.ca_file = _relative(cluster.get("certificate-authority"), cluster_dir)
    if cluster.get("certificate-authority-data"):
        config.ca_data = base64.b64decode(cluster["certificate-authority-data"]).decode()
    config.cert_file = _file_or_data(user, "client-certificate", user_dir, config)
    config.key_file = _file_or_data(user, "client-key", user_dir, config)
    if user.get("token"):
        token = str(user["token"])
        config.token = lambda: token
    elif user.get("tokenFile"):
        config.token = TokenFile(str(_relative(user["tokenFile"], user_dir)))
    elif user.get("username") and user.get("password"):
        raise ConfigException("kubeconfig basic auth is not supported; use a token")
    return config


def _named(
    docs: list[tuple[Path, dict[str, Any]]],
    section: str,
    key: str,
    name: Any,
    *,
    required: bool = True,
) -> tuple[dict[str, Any], Path]:
    for path, doc in docs:
        for entry in doc.get(section) or []:
            if isinstance(entry, dict) and entry.get("name") == name:
                return dict(entry.get(key) or {}), path.parent
    if required:
        raise ConfigException(f"the kubeconfig has no {key} named {name!r}")
    return {}, docs[0][0].parent


def _relative(value: Any, base: Path) -> str | None:
    if not value:
        return None
    path = Path(str(value)).expanduser()
    return str(path if path.is_absolute() else base / path)


def _file_or_data(user: dict[str, Any], name: str, base: Path, config: KubeConfig) -> str | None:
    data = user.get(f"{name}-data")
    if not data:
        return _relative(user.get(name), base)
    handle, path = tempfile.mkstemp(prefix="khook-kube-", suffix=".pem")
    with os.fdopen(handle, "wb") as out:  # mkstemp: readable by this user only
        out.write(base64.b64decode(data))
    config.temp_files.append(path)
    return path


def _official_loader(paths: str | None, context: str) -> KubeConfig:
    """An exec or auth-provider user: the official client's loader runs the command (and
    refreshes its token through the hook it installs)."""
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=paths, context=context, client_configuration=cfg
    )

    def token() -> str | None:
        if cfg.refresh_api_key_hook is not None:
            cfg.refresh_api_key_hook(cfg)
        value = cfg.api_key.get("authorization") or cfg.api_key.get("BearerToken")
        return str(value).removeprefix("Bearer ").strip() if value else None

    return KubeConfig(
        host=cfg.host,
        token=token,
        ca_file=cfg.ssl_ca_cert,
        cert_file=cfg.cert_file,
        key_file=cfg.key_file,
        verify=cfg.verify_ssl,
        server_name=cfg.tls_server_name,
        proxy=cfg.proxy,
    )
