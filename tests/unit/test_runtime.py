from __future__ import annotations

import threading
from pathlib import Path

import pytest

from khook_core.runtime import get_runtime, reset_runtime
from tests.configdir import SHOP_HOOK, make_config


def test_concurrent_first_requests_share_one_runtime(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KHOOK_CONFIG_DIR", str(make_config(tmp_path, SHOP_HOOK)))
    monkeypatch.setenv("KHOOK_STATE", "memory")
    monkeypatch.setenv("KHOOK_DISPATCH", "dry-run")
    seen: list[object] = []
    start = threading.Barrier(8)

    def first_request() -> None:
        start.wait()
        seen.append(get_runtime())

    threads = [threading.Thread(target=first_request) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(r) for r in seen}) == 1
    reset_runtime()
    assert get_runtime() is not seen[0]
