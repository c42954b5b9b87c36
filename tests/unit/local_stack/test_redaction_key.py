"""``khook up`` makes the local stack's redaction key once and keeps it."""

from __future__ import annotations

import stat
from pathlib import Path

from khook_core.redaction.keyed import Masker, key_bytes
from khook_local.stack import REDACTION_KEY_FILE, redaction_key


def test_the_key_is_made_once_kept_private_and_read_back(tmp_path: Path) -> None:
    state = tmp_path / ".khook"

    first = redaction_key(state)
    again = redaction_key(state)

    assert first == again
    assert len(key_bytes(first)) == 32
    Masker(key_bytes(first))  # long enough to be used
    mode = stat.S_IMODE((state / REDACTION_KEY_FILE).stat().st_mode)
    assert mode & 0o077 == 0


def test_each_state_directory_has_its_own_key(tmp_path: Path) -> None:
    assert redaction_key(tmp_path / "a") != redaction_key(tmp_path / "b")
