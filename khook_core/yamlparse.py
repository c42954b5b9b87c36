"""The YAML parser behind ``yamlfile.load_documents``: PyYAML's safe loader, building
``LineDict`` mappings (with the line of each key and the written text of each scalar) and
reporting every key written twice in one mapping.

Imported only when a file has no up-to-date pre-parsed form (``khook_core.preparsed``), so a
function started from its archive does not load PyYAML.
"""

from __future__ import annotations

from typing import Any

import yaml

from khook_core.errors import ConfigError, Problem
from khook_core.linedict import LineDict

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


def parse_documents(file: str, text: str) -> list[Any]:
    """Every non-empty document of ``text`` (the content of ``file``, which problems name).

    Raises:
        ConfigError: not valid YAML (with the line of the error), or a key written twice in
            one mapping (one problem per repeated key, with its line).
    """
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
        raise ConfigError([Problem(file, line, f"invalid YAML: {reason}")]) from exc
    finally:
        loader.dispose()
    if loader.duplicates:
        raise ConfigError(
            [
                Problem(file, line, f"duplicate key {key!r} (first at line {first})")
                for line, key, first in loader.duplicates
            ]
        )
    return docs
