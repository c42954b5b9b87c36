"""The forwarder's lean Kubernetes client against a real kube-apiserver: each way a kubeconfig or
a pod can say where the server is and who is asking, and a rotated service-account token."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import stat
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from khook_core.forwarder import kube
from khook_core.forwarder.config import ForwarderSettings
from khook_core.forwarder.kube_http import (
    ApiException,
    ConfigException,
    KubeClient,
    TokenFile,
    in_cluster_config,
    kubeconfig_config,
)
from tests.support.kube_real import RealKube, create_events, new_namespace


def admin(real_kube: RealKube) -> tuple[str, str, str]:
    """The server URL, its CA file and the admin's token, from the test kubeconfig."""
    doc = yaml.safe_load(real_kube.kubeconfig.read_text())
    cluster = doc["clusters"][0]["cluster"]
    ca_file = str(real_kube.kubeconfig.parent / cluster["certificate-authority"])
    return cluster["server"], ca_file, doc["users"][0]["user"]["token"]


def write_kubeconfig(path: Path, cluster: dict[str, Any], user: dict[str, Any]) -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [{"name": "k", "cluster": cluster}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
            }
        )
    )
    return path


def event_names(client: KubeClient, namespace: str) -> set[str]:
    page = client.get_json(f"/api/v1/namespaces/{namespace}/events")
    return {item["involvedObject"]["name"] for item in page["items"]}


@pytest.mark.parametrize("variant", ["ca-file", "ca-data", "insecure", "token-file"])
def test_a_kubeconfig_reaches_the_server(
    variant: str,
    real_kube: RealKube,
    tmp_path: Path,
):
    namespace = new_namespace(real_kube)
    create_events(real_kube, namespace, range(2))
    host, ca_file, token = admin(real_kube)
    cluster: dict[str, Any] = {"server": host}
    user: dict[str, Any] = {"token": token}
    if variant == "ca-file":
        cluster["certificate-authority"] = ca_file
    elif variant == "ca-data":
        cluster["certificate-authority-data"] = base64.b64encode(
            Path(ca_file).read_bytes()
        ).decode()
    elif variant == "insecure":
        cluster["insecure-skip-tls-verify"] = True
    else:
        cluster["certificate-authority"] = ca_file
        (tmp_path / "token").write_text(token + "\n")
        user = {"tokenFile": "token"}  # relative to the kubeconfig's directory
    config = write_kubeconfig(tmp_path / "config", cluster, user)

    with kube.api_client(ForwarderSettings(kubeconfig=str(config))) as client:
        assert len(event_names(client, namespace)) == 2


def test_the_server_is_not_trusted_without_its_ca(real_kube: RealKube, tmp_path: Path):
    host, _, token = admin(real_kube)
    config = write_kubeconfig(tmp_path / "config", {"server": host}, {"token": token})

    with (
        kube.api_client(ForwarderSettings(kubeconfig=str(config))) as client,
        pytest.raises(Exception, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify"),
    ):
        client.get_json("/api/v1/namespaces")


def test_a_refusal_carries_the_servers_status(real_kube: RealKube, tmp_path: Path):
    host, ca_file, _ = admin(real_kube)
    config = write_kubeconfig(
        tmp_path / "config",
        {"server": host, "certificate-authority": ca_file},
        {"token": "not-a-token"},
    )

    with (
        kube.api_client(ForwarderSettings(kubeconfig=str(config))) as client,
        pytest.raises(ApiException) as refused,
    ):
        client.get_json("/api/v1/namespaces")

    assert refused.value.status == 401
    assert json.loads(refused.value.body or "{}")["kind"] == "Status"


def test_an_exec_user_is_loaded_by_the_official_loader(real_kube: RealKube, tmp_path: Path):
    namespace = new_namespace(real_kube)
    create_events(real_kube, namespace, range(1))
    host, ca_file, token = admin(real_kube)
    credential = json.dumps(
        {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "kind": "ExecCredential",
            "status": {"token": token},
        }
    )
    plugin = tmp_path / "credential.py"
    plugin.write_text(f"print({credential!r})\n")
    config = write_kubeconfig(
        tmp_path / "config",
        {"server": host, "certificate-authority": ca_file},
        {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1beta1",
                "command": sys.executable,
                "args": [str(plugin)],
            }
        },
    )

    with kube.api_client(ForwarderSettings(kubeconfig=str(config))) as client:
        assert len(event_names(client, namespace)) == 1


def test_in_a_pod_the_service_account_is_used_and_a_rotated_token_picked_up(
    real_kube: RealKube,
    tmp_path: Path,
):
    namespace = new_namespace(real_kube)
    create_events(real_kube, namespace, range(1))
    host, ca_file, token = admin(real_kube)
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("expired-token")
    (account / "ca.crt").write_bytes(Path(ca_file).read_bytes())
    address, port = host.removeprefix("https://").rsplit(":", 1)
    config = in_cluster_config(address, port, account=account)
    now = [0.0]
    assert isinstance(config.token, TokenFile)
    config.token = TokenFile(config.token.path, clock=lambda: now[0])

    with KubeClient(config) as client:
        with pytest.raises(ApiException) as refused:
            event_names(client, namespace)
        assert refused.value.status == 401
        (account / "token").write_text(token)  # the kubelet rotated it
        now[0] += 61

        assert len(event_names(client, namespace)) == 1


def test_outside_a_pod_the_in_cluster_configuration_is_refused(tmp_path: Path):
    with pytest.raises(ConfigException):
        in_cluster_config("", "", account=tmp_path)
    with pytest.raises(ConfigException):
        in_cluster_config("10.0.0.1", "443", account=tmp_path)  # no token file
    (tmp_path / "token").write_text("t")
    assert in_cluster_config("fd00::1", "443", account=tmp_path).host == "https://[fd00::1]:443"


def test_certificate_data_is_written_to_private_files_removed_on_close(tmp_path: Path):
    pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    config_path = write_kubeconfig(
        tmp_path / "config",
        {"server": "http://127.0.0.1:9"},
        {
            "client-certificate-data": base64.b64encode(pem).decode(),
            "client-key-data": base64.b64encode(b"key").decode(),
        },
    )

    config = kubeconfig_config(str(config_path))

    assert config.cert_file is not None
    assert config.key_file is not None
    assert Path(config.cert_file).read_bytes() == pem
    assert stat.S_IMODE(os.stat(config.key_file).st_mode) == 0o600
    KubeClient(config).close()
    assert not Path(config.cert_file).exists()
    assert not Path(config.key_file).exists()


def test_kubeconfig_files_are_merged_and_the_first_to_name_a_thing_wins(tmp_path: Path):
    first = write_kubeconfig(tmp_path / "a", {"server": "https://first:6443"}, {"token": "a"})
    second = tmp_path / "b"
    second.write_text(
        json.dumps(
            {
                "clusters": [{"name": "k", "cluster": {"server": "https://second:6443"}}],
                "users": [{"name": "v", "user": {"token": "b"}}],
            }
        )
    )

    assert kubeconfig_config(f"{second}{os.pathsep}{first}").host == "https://second:6443"
    assert kubeconfig_config(f"{first}{os.pathsep}{second}").host == "https://first:6443"
    with pytest.raises(ConfigException, match="current-context"):
        kubeconfig_config(str(second))
    with pytest.raises(ConfigException, match="no kubeconfig"):
        kubeconfig_config(None, home=tmp_path)


def test_tls_server_name_is_the_name_the_certificate_is_checked_against(
    real_kube: RealKube,
    tmp_path: Path,
):
    host, ca_file, token = admin(real_kube)
    cluster = {"server": host, "certificate-authority": ca_file}

    named = write_kubeconfig(
        tmp_path / "named", {**cluster, "tls-server-name": "kubernetes.default"}, {"token": token}
    )
    with kube.api_client(ForwarderSettings(kubeconfig=str(named))) as client:
        assert client.get_json("/api/v1/namespaces")["kind"] == "NamespaceList"

    wrong = write_kubeconfig(
        tmp_path / "wrong", {**cluster, "tls-server-name": "elsewhere.example"}, {"token": token}
    )
    with (
        kube.api_client(ForwarderSettings(kubeconfig=str(wrong))) as client,
        pytest.raises(Exception, match=r"elsewhere\.example|match|CERTIFICATE"),
    ):
        client.get_json("/api/v1/namespaces")


class ConnectProxy:
    """An HTTP proxy that tunnels ``CONNECT host:port`` and records each target."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._sockets.append(client)
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += client.recv(4096)
        target = head.split(b" ")[1].decode()
        self.targets.append(target)
        address, port = target.rsplit(":", 1)
        upstream = socket.create_connection((address, int(port)))
        self._sockets.append(upstream)
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def stop(self) -> None:
        self._listener.close()
        for sock in self._sockets:
            sock.close()


def test_a_proxy_url_carries_every_request(real_kube: RealKube, tmp_path: Path):
    host, ca_file, token = admin(real_kube)
    proxy = ConnectProxy()
    try:
        config = write_kubeconfig(
            tmp_path / "config",
            {"server": host, "certificate-authority": ca_file, "proxy-url": proxy.url},
            {"token": token},
        )
        with kube.api_client(ForwarderSettings(kubeconfig=str(config))) as client:
            assert client.get_json("/api/v1/namespaces")["kind"] == "NamespaceList"
    finally:
        proxy.stop()

    assert proxy.targets == [host.removeprefix("https://")]
