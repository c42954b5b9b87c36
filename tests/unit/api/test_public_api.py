"""The public surface of khook_core is a sorted list whose every name resolves."""

from __future__ import annotations

import khook_core


def test_all_is_sorted_and_every_name_resolves():
    assert khook_core.__all__ == sorted(khook_core.__all__)
    assert set(khook_core.__all__) == set(khook_core._EXPORTS)
    for name in khook_core.__all__:
        assert getattr(khook_core, name) is not None
