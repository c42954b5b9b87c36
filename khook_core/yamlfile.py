"""YAML loading that remembers line numbers, so configuration errors can say ``file:line``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import yaml

from khook_core.errors import ConfigError, Problem


class LineDict(dict[str, Any]):
    """A mapping from YAML that knows the line it starts on and the line of each key."""

    line: int = 0
    key_lines: dict[str, int]
    value_text: dict[str, tuple[int, str]]
    """For each key whose value is a scalar: the line the value starts on and its text as
    written in the file (quotes, block indicator and all), to point inside multi-line values."""


# libyaml's parser when PyYAML has it (ten times faster: config loading is on the cold-start
# path of every function), with the safe constructor either way.
_SafeBase: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


_MERGE_TAG = "tag:yaml.org,2002:merge"


class _LineLoader(_SafeBase):  # type: ignore[valid-type,misc]
    """A safe loader (never constructs arbitrary objects) that builds ``LineDict`` mappings."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.text = stream
        self.duplicates: list[tuple[int, str, int]] = []
        """(line, key, line of the first occurrence) of every key written twice in a mapping."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    # ``<<`` merges put the merged pairs before the mapping's own ones; a key of its own may
    # override a merged key (that is what merges are for), but never another key of its own.
    own_count = sum(1 for key_node, _ in node.value if key_node.tag != _MERGE_TAG)
    loader.flatten_mapping(node)
    first_own = len(node.value) - own_count
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    result.value_text = {}
    own: set[str] = set()
    for index, (key_node, value_node) in enumerate(node.value):
        key = str(loader.construct_object(key_node, deep=True))
        line = key_node.start_mark.line + 1
        if index >= first_own:
            if key in own:
                loader.duplicates.append((line, key, result.key_lines[key]))
            own.add(key)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
        if isinstance(value_node, yaml.ScalarNode):
            start, end = value_node.start_mark, value_node.end_mark
            result.value_text[key] = (start.line + 1, loader.text[start.index : end.index])
    return result


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def line_of(value: Any, key: str | None = None) -> int | None:
    """The line of a mapping (or of one of its keys), when it came from a YAML file."""
    if isinstance(value, LineDict):
        if key is not None and key in value.key_lines:
            return value.key_lines[key]
        return value.line
    return None


def line_within(value: Any, key: str, token: str, occurrence: int = 0) -> int | None:
    """The line of the ``occurrence``-th ``token`` inside the scalar at ``key`` as written in
    the file, so a problem in line 5 of a block-scalar prompt points at that line; None when the
    token is not written literally there (an escape in a double-quoted string)."""
    if not isinstance(value, LineDict) or key not in value.value_text:
        return None
    first, written = value.value_text[key]
    at = -1
    for _ in range(occurrence + 1):
        at = written.find(token, at + 1)
        if at < 0:
            return None
    return first + written.count("\n", 0, at)


UNREADABLE: Final = "cannot read"
"""How a problem with a file that could not be read starts (the CLI exits 2 for those)."""


def load_documents(path: Path) -> list[Any]:
    """All documents of a (possibly multi-document) YAML file; empty documents are skipped.

    Raises:
        ConfigError: the file cannot be read, is not valid YAML (with the line of the error) or
            writes a key twice in one mapping (one problem per repeated key, with its line).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        problem = f"{UNREADABLE}: {(exc.strerror or str(exc)).lower()}"
        raise ConfigError([Problem(str(path), None, problem)]) from exc
    loader = _LineLoader(text)
    docs: list[Any] = []
    try:
        while loader.check_data():
            doc = loader.get_data()
            if doc is not None:
                docs.append(doc)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([Problem(str(path), line, f"invalid YAML: {reason}")]) from exc
    finally:
        loader.dispose()
    if loader.duplicates:
        raise ConfigError(
            [
                Problem(str(path), line, f"duplicate key {key!r} (first at line {first})")
                for line, key, first in loader.duplicates
            ]
        )
    return docs
